"""Running a sweep: serially, on local worker processes, or on a Dask cluster.

Every scenario is planned independently by :func:`planner.whatif.evaluate.evaluate`,
a pure function of the scenario, the data folder and the signal, so the rows do
not depend on where or in which order they ran (only ``seconds``, the wall time,
does).  Finished rows go to the results file at once; Ctrl-C (KeyboardInterrupt)
cancels what has not started, keeps what finished, and a rerun skips them.  Local
worker processes end when this process dies (even by SIGKILL), and a second sweep
on the same results file is refused (:class:`planner.whatif.results.ResultStore`).
"""

from __future__ import annotations

import os
import signal as signals
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.whatif.evaluate import evaluate
from greenepoch.planner.whatif.results import ResultStore, results_frame
from greenepoch.planner.whatif.spec import Scenario, Spec

DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class SweepResult:
    """The rows of the spec's scenarios that are finished, and how the run ended."""

    frame: pd.DataFrame  # indexed by scenario_id, in scenario order
    total: int  # scenarios in the spec
    reused: int  # rows found in the results file from an earlier run
    interrupted: bool
    backend: str  # serial | processes | dask

    @property
    def done(self) -> int:
        return len(self.frame)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 0.5  # how often a worker without PR_SET_PDEATHSIG looks for its parent


def _die_with_parent(parent: int) -> None:
    """End this worker when ``parent`` dies, even by SIGKILL (which runs no cleanup).

    A pool worker waits on a pipe whose write end it holds itself, so it would never
    see the parent go and would block forever.  On Linux the kernel sends SIGKILL on
    the parent's death (``prctl(PR_SET_PDEATHSIG)``, immune to a solve holding the
    GIL); elsewhere a daemon thread polls ``os.getppid()``.  Either way, a parent that
    died before this ran is noticed at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signals.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            armed = False
    if os.getppid() != parent:  # already orphaned (re-parented to init or a subreaper)
        os._exit(1)
    if armed:
        return

    def watch() -> None:  # pragma: no cover - Linux uses prctl
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="whatif-parent-watch", daemon=True).start()


def _init_worker(parent: int) -> None:
    # Worker processes leave Ctrl-C to the parent, which cancels and keeps the rows,
    # and end when the parent dies.
    signals.signal(signals.SIGINT, signals.SIG_IGN)
    _die_with_parent(parent)


def _serial(todo: Sequence[Scenario], data: str | None, spec: Spec) -> Iterator[dict]:
    for scenario in todo:
        yield evaluate(scenario, data, spec.signal, spec.seed)


def _processes(todo: Sequence[Scenario], data: str | None, spec: Spec,
               workers: int) -> Iterator[dict]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                               initargs=(os.getpid(),))
    futures = [pool.submit(evaluate, s, data, spec.signal, spec.seed) for s in todo]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        # normal end, Ctrl-C or an error: drop what has not started; the running
        # scenarios finish (they are short) so the pool exits cleanly
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(todo: Sequence[Scenario], data: str | None, spec: Spec,
          scheduler: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise GreenEpochError(
            f"running on the Dask scheduler {scheduler} needs Dask distributed; install it with "
            "pip install 'dask[distributed]'"
        ) from None
    try:
        client = Client(scheduler, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise GreenEpochError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
            "'dask scheduler' and workers with 'dask worker ADDRESS', or run on local "
            "processes (no scheduler)"
        ) from None
    futures = client.map(evaluate, list(todo), data=data, signal=spec.signal, seed=spec.seed,
                         key=[f"whatif-{s.id}" for s in todo], pure=False)
    try:
        for future in as_completed(futures, loop=client.loop):
            yield future.result()
    finally:
        client.cancel(futures)
        client.close()


def run_sweep(spec: Spec, out: str | Path, *, data: str | None = None,
              workers: int = DEFAULT_WORKERS, scheduler: str | None = None,
              progress: bool = True,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run the spec's scenarios not yet in ``out`` and return all of its rows.

    ``data`` is the resolved data folder (None: the synthetic default); workers on a
    Dask cluster must see it at the same path.  A zone without intensities there is
    refused (RequestError) before anything runs.  ``workers <= 1`` runs serially in
    this process.  ``on_row`` is called after each new row is stored.
    """
    from tqdm import tqdm

    spec.check_zones(data)  # a typo in a zone is bad input, not a row of errors
    scenarios = spec.scenarios(data)
    header = {"base": spec.fingerprint, "data": data, "signal": spec.signal,
              "seed": spec.seed}
    wanted = {s.id for s in scenarios}
    with ResultStore(out, header) as store:
        reused = sum(1 for sid in store.rows if sid in wanted)
        todo = [s for s in scenarios if s.id not in store.rows]
        if scheduler:
            backend, rows = "dask", _dask(todo, data, spec, scheduler)
        elif workers > 1 and len(todo) > 1:
            backend, rows = "processes", _processes(todo, data, spec, workers)
        else:
            backend, rows = "serial", _serial(todo, data, spec)
        interrupted = False
        bar = tqdm(total=len(scenarios), initial=reused, desc="whatif", unit="scenario",
                   file=sys.stderr, disable=not progress or not todo, mininterval=0.5,
                   dynamic_ncols=True)
        try:
            for row in rows:
                store.append(row)
                bar.update(1)
                if on_row is not None:
                    on_row(row)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                try:
                    close()
                except KeyboardInterrupt:  # a second Ctrl-C while workers finish
                    interrupted = True
            bar.close()
        finished = [store.rows[s.id] for s in scenarios if s.id in store.rows]
    return SweepResult(results_frame(finished), len(scenarios), reused, interrupted, backend)
