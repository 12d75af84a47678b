"""Sweeps on a real Dask distributed cluster give the serial rows."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from greenepoch.planner.whatif import load_spec, run_sweep

SPEC = """
start = "2023-05-08T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
deadline = "2023-05-09T00:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16

[policy]
time_limit = "5s"

[sweep]
zones = ["DE", "ES"]
slack = ["0h", "12h", "24h"]
forecast = ["oracle", "seasonal"]
"""


def _distributed():
    try:
        import distributed
    except ImportError:
        if os.environ.get("GREENEPOCH_REQUIRE_SERVICES"):
            pytest.fail("GREENEPOCH_REQUIRE_SERVICES is set but dask.distributed is not "
                        "installed: pip install 'dask[distributed]'")
        pytest.skip("dask.distributed absent: pip install 'dask[distributed]'")
    return distributed


@pytest.mark.dask
@pytest.mark.realdata
def test_dask_cluster_gives_the_serial_rows(real_data: Path, tmp_path: Path) -> None:
    distributed = _distributed()
    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    spec = load_spec(path)
    serial = run_sweep(spec, tmp_path / "serial.jsonl", data=str(real_data), workers=1,
                       progress=False)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        on_dask = run_sweep(spec, tmp_path / "dask.jsonl", data=str(real_data),
                            scheduler=cluster.scheduler_address, progress=False)
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    assert on_dask.backend == "dask" and on_dask.done == on_dask.total == 12
    pd.testing.assert_frame_equal(on_dask.frame.drop(columns="seconds"),
                                  serial.frame.drop(columns="seconds"))


@pytest.mark.dask
def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    _distributed()
    from greenepoch.data.errors import GreenEpochError

    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    with pytest.raises(GreenEpochError, match="cannot reach the Dask scheduler"):
        run_sweep(load_spec(path), tmp_path / "r.jsonl", scheduler="tcp://127.0.0.1:9",
                  progress=False)
