"""Speed of planning on a forecast and of the forecast backtest (issue 13, item 15).

Runs the ``greenepoch`` command itself, on real data, and prints a table:

* ``plan cold``: ``greenepoch plan`` of the shipped 4-zone demo request (DE, GB, ES,
  NO; June 2023) with ``--forecast default`` and an empty ``GREENEPOCH_CACHE``
  (the model is fitted);
* ``plan warm``: the same command again (the fitted model comes from the cache);
* ``backtest``: ``greenepoch forecast backtest`` with its defaults (model
  ``default``, ``--refit 28D``, every zone in the data) over 2023, trained through
  2022.

Wall time and CPU time (user + system of the child) are both printed: on a shared
machine the wall time also counts waiting for a core, so say how loaded it was (the
load average is printed too).  Targets: cold < 15 s, warm < 3 s, backtest < 15 min.

    OMP_NUM_THREADS=1 python benchmarks/bench_forecast_speed.py --data ../shared/data
    python benchmarks/bench_forecast_speed.py --skip-backtest   # the two plans only
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS_S = {"plan cold": 15.0, "plan warm": 3.0, "backtest": 15 * 60.0}


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one ``greenepoch`` run, and its output (stdout + stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "greenepoch.planner.cli.main", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"greenepoch {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout + done.stderr


def _solver_s(output: str) -> str:
    """The planner's own solve + build seconds (wall), from its summary line."""
    m = re.search(r"([\d.]+) s solve \+ ([\d.]+) s build", output)
    return f"{float(m.group(1)) + float(m.group(2)):.1f}" if m else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("GREENEPOCH_DATA", "../shared/data"),
                    help="folder of the shared data (default $GREENEPOCH_DATA or ../shared/data)")
    ap.add_argument("--skip-backtest", action="store_true", help="time the two plans only")
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_absolute():
        data = (ROOT / data).resolve()
    if not (data / "electricitymaps").is_dir():
        raise SystemExit(f"no electricitymaps/ in {data}: give --data or GREENEPOCH_DATA")

    work = Path(tempfile.mkdtemp(prefix="greenepoch-bench-"))
    rows: list[tuple[str, float, float, str]] = []
    load_before = os.getloadavg()[0]
    try:
        env = dict(os.environ, GREENEPOCH_DATA=str(data), OMP_NUM_THREADS="1",
                   GREENEPOCH_CACHE=str(work / "cache"))
        request = work / "request.toml"
        request.write_text(resources.files("greenepoch.data").joinpath("demo_request.toml")
                           .read_text())
        plan = ["plan", str(request), "--forecast", "default", "--out", str(work / "p.json")]
        for case in ("plan cold", "plan warm"):
            wall, cpu, err = _run(plan, env)
            rows.append((case, wall, cpu, _solver_s(err)))
        if not args.skip_backtest:
            wall, cpu, _ = _run(["forecast", "backtest", "--train-until", "2022-12-31",
                                 "--test-from", "2023-01-01", "--test-until", "2023-12-31",
                                 "--json"], env)
            rows.append(("backtest", wall, cpu, "-"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("| case | wall s | CPU s | solver wall s | target s | met (wall) |")
    print("|---|---|---|---|---|---|")
    for case, wall, cpu, solver in rows:
        target = TARGETS_S[case]
        print(f"| {case} | {wall:.1f} | {cpu:.1f} | {solver} | {target:.0f} | "
              f"{'yes' if wall < target else 'no'} |")
    print(f"\n{os.cpu_count()} cores; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (a shared machine: wall time includes waiting "
          "for a core).")


if __name__ == "__main__":
    main()
