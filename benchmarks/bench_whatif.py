"""What-if sweep throughput: scenarios per second serially, on 2 local worker processes
and on a 2-worker Dask distributed cluster (``LocalCluster``, processes, 1 thread each).

Instance (fixed): a 6-hour, 8-GPU fine-tune (1 h slots, 10 s time limit) swept over
4 zone sets x 4 quarters x 2 start dates x 3 slacks x 2 forecasts (oracle, seasonal)
= 192 scenarios on the shared real data (``$GREENEPOCH_DATA``), or the synthetic
default without it.  Each backend runs the whole sweep into a fresh results file,
in a fresh pool (so worker start-up and data loading are included and timed as they
would be for a user); ``--scenarios N`` runs the first N only.  Rows are checked
equal across backends (all fields but the wall time).  Usage::

    GREENEPOCH_DATA=../shared/data python -m benchmarks.bench_whatif [--scenarios 96]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from greenepoch.data.intensity.source import data_dir
from greenepoch.planner.report.table import render
from greenepoch.planner.whatif import parse_spec, run_sweep

SPEC = {
    "start": "2023-01-09T00:00:00Z",
    "whatif": {"starts_per_season": 2},
    "jobs": [{"name": "finetune", "gpus": 8, "duration": "6h", "gpu_power_kw": 0.7,
              "deadline": "2023-01-10T00:00:00Z", "zones": ["DE"],
              "checkpoint_overhead": "10min"}],
    "zones": [{"id": "DE", "capacity_gpus": 64}],
    "policy": {"slot": "1h", "time_limit": "10s"},
    "sweep": {"zones": ["DE", "GB", "ES", ["DE", "GB"]],
              "quarters": ["2023Q1", "2023Q2", "2023Q3", "2023Q4"],
              "slack": ["0h", "12h", "36h"], "forecast": ["oracle", "seasonal"]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=None,
                        help="run only the first N scenarios")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    root = data_dir(None)
    data = None if root is None else str(root.resolve())
    spec = parse_spec(SPEC)
    if args.scenarios:
        keep = spec.scenarios(data)[: args.scenarios]
        spec = _Limited(spec, keep)
    n = len(spec.scenarios(data))
    print(f"{n} scenarios on {'real data in ' + data if data else 'synthetic intensities'}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    runs: list[tuple[str, dict]] = [("serial", {"workers": 1}),
                                    ("2 local processes", {"workers": 2})]
    cluster = None
    if not args.skip_dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=None, host="127.0.0.1")
        runs.append(("2-worker Dask", {"scheduler": cluster.scheduler_address}))
    rows, frames = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, kwargs) in enumerate(runs):
            began = time.perf_counter()
            result = run_sweep(spec, Path(tmp) / f"{i}.jsonl", data=data, progress=False,
                               **kwargs)
            seconds = time.perf_counter() - began
            frames[label] = result.frame.drop(columns="seconds")
            rows.append({"backend": label, "scenarios": result.done, "seconds": seconds,
                         "scenarios_per_s": result.done / seconds,
                         "mean_solve_s": float(result.frame["seconds"].mean())})
    if cluster is not None:
        cluster.close()
    base = frames["serial"]
    for label, frame in frames.items():
        pd.testing.assert_frame_equal(frame, base, obj=label)
    table = pd.DataFrame(rows)
    table["speed_up"] = table["scenarios_per_s"] / table["scenarios_per_s"].iloc[0]
    print(render(table, "{:,.2f}"))
    print("rows identical across backends (all fields but wall time)")


class _Limited:
    """A spec restricted to its first scenarios (for quick runs)."""

    def __init__(self, spec, scenarios) -> None:
        self._spec = spec
        self._scenarios = scenarios

    def scenarios(self, data=None):
        return self._scenarios

    def __getattr__(self, name):
        return getattr(self._spec, name)


if __name__ == "__main__":
    main()
