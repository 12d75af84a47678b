"""A live run reads the grid at its decision interval, not only on whole hours."""

from __future__ import annotations

from pathlib import Path

import fake_ukci
import pandas as pd
import pytest
from fake_http import FakeServer
from greenepoch.data.archive.store import Archive
from greenepoch.data.providers.config import load_config
from greenepoch.planner.run.controller import _live_slot
from greenepoch.planner.run.feeds import LiveFeed

NOW = pd.Timestamp("2026-03-02T12:40:00Z")


@pytest.mark.parametrize(("slot", "periods"), [
    ("30min", ["12:00"]),            # the last half hour that has ended
    ("1h", ["11:00", "11:30"]),      # the last whole hour: its two half hours' mean
])
def test_the_latest_actual_is_read_on_the_run_slot(tmp_path: Path, monkeypatch, slot: str,
                                                   periods: list[str]) -> None:
    with FakeServer() as server:
        fake_ukci.serve(server, now=NOW)
        monkeypatch.setenv("GREENEPOCH_UKCI_URL", server.url)
        feed = LiveFeed("GB", config=load_config(), provider="ukci",
                        archive=Archive(f"sqlite:///{tmp_path / 'a.sqlite'}"),
                        clock=lambda: NOW, slot=slot)
        reading = feed.observe(NOW)
    day = NOW.strftime("%Y-%m-%d")
    starts = [pd.Timestamp(f"{day}T{p}Z") for p in periods]
    truth = fake_ukci.trace("GB", starts[0], starts[-1] + pd.Timedelta("30min"), now=NOW)
    assert reading.intensity == pytest.approx(truth["actual"].mean())
    assert not reading.stale


def test_the_live_slot_is_the_interval_or_the_largest_slot_dividing_it() -> None:
    got = [_live_slot(pd.Timedelta(x)) for x in ("15min", "30min", "1h", "2h", "45min", "7min")]
    assert got == ["15min", "30min", "1h", "1h", "15min", "15min"]
