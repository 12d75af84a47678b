"""The report in a real browser: headless Chromium (Debian package ``chromium``, which
.ci/services.sh installs) loads every figure and paints a non-blank page."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from greenepoch.planner.report import build_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("GREENEPOCH_REQUIRE_SERVICES"):
            pytest.fail("GREENEPOCH_REQUIRE_SERVICES is set but chromium is not installed; "
                        "run .ci/services.sh (apt-get install chromium)")
        pytest.skip("chromium absent: apt-get install chromium")
    return path


def run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def render_checks(browser: str, page: Path, tmp: Path, figures: int) -> None:
    from PIL import Image, ImageStat

    dom = run(browser, tmp / "profile-dom", "--virtual-time-budget=10000", "--dump-dom",
              page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    assert f'data-figures="{figures}/{figures}"' in body.group(0), body.group(0)
    assert 'data-figures-loaded="true"' in body.group(0)

    shot = tmp / "shot.png"
    res = run(browser, tmp / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2400",
              page.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    assert image.size == (1280, 2400)
    # not blank: enough non-white pixels and real contrast
    dark = sum(image.histogram()[:200])
    assert dark > 0.02 * image.width * image.height
    assert ImageStat.Stat(image).stddev[0] > 20


@pytest.mark.browser
@pytest.mark.realdata
def test_result_report_renders_in_chromium(real_data: Path, tmp_path: Path) -> None:
    browser = chromium()
    from greenepoch.planner.whatif import load_spec, run_sweep
    from test_report import SWEEP

    (tmp_path / "spec.toml").write_text(SWEEP, encoding="utf-8")
    out = tmp_path / "sweep.jsonl"
    run_sweep(load_spec(tmp_path / "spec.toml"), out, data=str(real_data), workers=2,
              progress=False)
    report = build_report(out, data=str(real_data))
    page = tmp_path / "report.html"
    page.write_text(report.html(), encoding="utf-8")
    render_checks(browser, page, tmp_path, report.figures)


@pytest.mark.browser
def test_plan_report_renders_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         ) -> None:
    browser = chromium()
    from greenepoch.planner.pipeline import plan
    from greenepoch.planner.request import load_request

    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)  # the synthetic default
    from test_report import PLAN

    (tmp_path / "req.toml").write_text(PLAN, encoding="utf-8")
    plan(load_request(tmp_path / "req.toml"), oracle=True).to_json(tmp_path / "plan.json")
    report = build_report(tmp_path / "plan.json")
    assert "synthetic" in report.html()
    page = tmp_path / "plan.html"
    page.write_text(report.html(), encoding="utf-8")
    render_checks(browser, page, tmp_path, report.figures)
