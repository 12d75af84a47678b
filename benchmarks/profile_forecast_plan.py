"""Where a warm 4-zone forecast plan spends its time, and what would make it faster
(issue 13 item 15: under 3 s with the fitted models cached).

The case is ``plan warm`` of :mod:`benchmarks.bench_forecast_speed`: ``greenepoch plan``
of the shipped demo request (DE, GB, ES, NO; June 2023) with ``--forecast default``,
the fitted ``blend`` already in ``GREENEPOCH_CACHE`` (one cold plan fills it first).
Each run is a fresh ``python`` process, as a user's command is; inside it the
planner's stages are wrapped with timers (monkeypatched here, not in the planner), so
the table adds up to the process's wall time:

* ``start + exit``: the interpreter, the ``benchmarks`` package and exit (process wall
  minus everything below);
* ``imports``: ``import greenepoch.planner.cli.main`` (pandas alone is ~0.4 s of CPU);
* ``read exports``: ``ExportFolderSource._read``: the CSV files of the 4 zones, 2022 and
  2023 (the cache key hashes the 400 days the model was fitted on, so they are read);
* ``cached model``: ``forecast_cache.fitted_model`` (hash of the window, unpickle);
* ``predict``, ``prices``, ``build problem``, ``run-now plans``, ``assemble``,
  ``write`` (plan JSON and CSV), ``summary`` (the printed tables);
* ``solve: HiGHS run`` / ``solve: rest``: ``solve_problem`` split into HiGHS's own
  ``run`` and the rest (pre-checks, the MILP build, PuLP, baselines);
* ``other``: the rest of the process (request parsing, click, the rest of
  ``load_intensities``).

A *variant* changes one thing by monkeypatching it in the child process, so that a
proposal is measured before anyone edits the planner (``--variant``, repeatable; the
list is in ``VARIANTS``; ``gap1pct+diskread`` applies both).  Each variant runs once
unmeasured first (its own caches filled, files in the page cache).  Every figure is
the median of ``--runs`` runs (default 3; variants interleaved), wall and CPU seconds:
on a shared machine the wall time also counts waiting for a core, so CPU is the
steadier figure, and the load average is printed.
``--cprofile N`` also prints the N functions with the most cumulative time of one
``base`` run (cProfile, stdlib: pyinstrument would add a dependency for one table).

    GREENEPOCH_DATA=../shared/data OMP_NUM_THREADS=1 \\
        python -m benchmarks.profile_forecast_plan --runs 5 --variant gap1pct
"""

from __future__ import annotations

import time

_BEGAN = time.perf_counter()  # before any heavy import: the child's own clock

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0

#: stage label -> [wall, CPU] seconds, filled by the wrappers in the child process
SPENT: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])


def _timed(owner: Any, attr: str, label: str,
           after: Callable[[Any], None] | None = None) -> None:
    """Replace ``owner.attr`` with a wrapper adding its wall and CPU time to
    ``SPENT[label]``; ``after`` sees each result (to time what it returns, e.g. a
    model's predict)."""
    inner = getattr(owner, attr)
    if getattr(inner, "_timed", False):  # wrapped already (a class, or a second call)
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            out = inner(*args, **kwargs)
        finally:
            SPENT[label][0] += time.perf_counter() - wall
            SPENT[label][1] += time.process_time() - cpu
        if after is not None:
            after(out)
        return out

    wrapper._timed = True  # type: ignore[attr-defined]
    setattr(owner, attr, wrapper)


def _wrap_stages() -> None:
    """Timers around the planner's stages (see the module docstring)."""
    import highspy
    from greenepoch.data.intensity import source
    from greenepoch.planner import forecast_cache, pipeline
    from greenepoch.planner import plan as plan_module
    from greenepoch.planner.cli import plan_cmd
    from greenepoch.solvers import solve

    def time_predict(model: Any) -> None:
        _timed(model, "predict", "predict")

    def time_write(result: Any) -> None:  # a frozen Plan: wrap its class's method
        _timed(type(result), "write", "write")

    _timed(source.ExportFolderSource, "_read", "read exports")
    _timed(forecast_cache, "fitted_model", "cached model", after=time_predict)
    _timed(pipeline, "zone_prices", "prices")
    _timed(pipeline, "build_problem", "build problem")
    _timed(plan_module, "run_now_plans", "run-now plans")
    _timed(solve, "solve_problem", "solve")
    _timed(highspy.Highs, "run", "solve: HiGHS run")
    _timed(plan_module, "assemble", "assemble", after=time_write)
    _timed(plan_cmd, "plan_summary", "summary")


# --------------------------------------------------------------------------- variants
def _gap(mip_gap: float) -> Callable[[], None]:
    """Solve forecast plans to a relative MIP gap of ``mip_gap`` (the request's
    ``policy.mip_gap`` is 1e-4)."""
    def patch() -> None:
        import dataclasses

        from greenepoch.solvers import solve

        inner = solve.solve_problem

        def solve_problem(problem: Any, settings: Any, *args: Any, **kwargs: Any) -> Any:
            return inner(problem, dataclasses.replace(settings, mip_gap=mip_gap),
                         *args, **kwargs)

        solve.solve_problem = solve_problem
    return patch


def _fast_path() -> None:
    """Every HiGHS solve on the vectorised path (:func:`solvers.solve.solve_fast`, warm
    started from the run-now baselines), not only those above ``FAST_MIN_KEYS``."""
    from greenepoch.solvers import solve

    solve.FAST_MIN_KEYS = 0


def _disk_reads() -> None:
    """``ExportFolderSource`` reads kept on disk (the parsed, validated
    ``IntensityData`` pickled) under the fitted models' cache folder, keyed by the
    source's own ``cache_key`` (zones, signal, flags, every file's size and mtime)."""
    import hashlib
    import pickle

    from greenepoch.data.intensity import source
    from greenepoch.planner.forecast_cache import cache_dir

    inner = source.ExportFolderSource._read

    def _read(self: Any, zones: list[str], start: Any, end: Any, signal: str,
              slot: str) -> Any:
        key = repr(self.cache_key(zones, start, end, signal, slot))
        folder = cache_dir()
        assert folder is not None, "the profile runs with GREENEPOCH_CACHE set"
        path = folder / "reads" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.pkl"
        if path.exists():
            return pickle.loads(path.read_bytes())
        got = inner(self, zones, start, end, signal, slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL))
        return got

    source.ExportFolderSource._read = _read  # type: ignore[method-assign]


def _window_years() -> None:
    """``ExportFolderSource`` reads only the files of the years its window touches
    (Electricity Maps names them ``ZONE_YYYY_hourly.csv``); today it reads every year of
    the zones and then selects the window."""
    import re

    from greenepoch.data.intensity import readers, source

    span: dict[str, tuple[Any, Any]] = {}
    inner_read, inner_files = source.ExportFolderSource._read, readers._csv_files

    def _read(self: Any, zones: list[str], start: Any, end: Any, signal: str,
              slot: str) -> Any:
        span["window"] = (start, end)
        try:
            return inner_read(self, zones, start, end, signal, slot)
        finally:
            span.clear()

    def in_window(file: Path) -> bool:
        year = re.search(r"_(\d{4})_", file.name)
        first, last = span["window"]
        return year is None or (
            (first is None or int(year[1]) >= first.year)
            and (last is None or int(year[1]) <= last.year))

    def _csv_files(path: Path) -> tuple[list[Path], list[str]]:
        files, skipped = inner_files(path)
        if "window" in span:
            files = [f for f in files if in_window(f)]
        return files, skipped

    source.ExportFolderSource._read = _read  # type: ignore[method-assign]
    readers._csv_files = _csv_files


VARIANTS: dict[str, tuple[str, Callable[[], None]]] = {
    "base": ("the planner as it is", lambda: None),
    "gap1pct": ("MILP stops at a 1 % gap (the forecast's own error is ~10 %)", _gap(0.01)),
    "gap0.5pct": ("MILP stops at a 0.5 % gap", _gap(0.005)),
    "gap0.1pct": ("MILP stops at a 0.1 % gap", _gap(0.001)),
    "fastpath": ("the vectorised HiGHS build for small problems too", _fast_path),
    "diskread": ("parsed exports kept on disk beside the fitted models", _disk_reads),
    "years": ("only the export files of the window's years are read", _window_years),
}


# ------------------------------------------------------------------------------ child
def child(variant: str, args: list[str], profile: int) -> None:
    """One plan in this process; prints the stage seconds as JSON on the last line."""
    wall, cpu = time.perf_counter(), time.process_time()
    from greenepoch.planner.cli.main import cli

    SPENT["imports"] = [time.perf_counter() - wall, time.process_time() - cpu]
    for name in variant.split("+"):
        VARIANTS[name][1]()
    _wrap_stages()  # after the variants: the timers time what a variant put in place
    run = lambda: cli.main(args, standalone_mode=False)  # noqa: E731
    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.runcall(run)
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(profile)
        print(text.getvalue(), file=sys.stderr)
    else:
        run()
    SPENT["child"] = [time.perf_counter() - _BEGAN, time.process_time()]
    print(json.dumps(SPENT))


# ----------------------------------------------------------------------------- parent
ORDER = ["imports", "read exports", "cached model", "predict", "prices", "build problem",
         "run-now plans", "solve: HiGHS run", "solve: rest", "assemble", "write", "summary",
         "other", "start + exit"]


def _stages(spent: dict[str, list[float]], wall: float, cpu: float) -> dict[str, list[float]]:
    """Exclusive [wall, CPU] seconds per stage, adding up to the process's."""
    out = {k: spent.get(k, [0.0, 0.0]) for k in ORDER[:-2]}
    out["solve: rest"] = [a - b for a, b in zip(spent["solve"], out["solve: HiGHS run"],
                                                   strict=True)]
    inside = [sum(v[i] for v in out.values()) for i in (0, 1)]
    out["other"] = [spent["child"][i] - inside[i] for i in (0, 1)]
    out["start + exit"] = [wall - spent["child"][0], cpu - spent["child"][1]]
    return out


def _one(variant: str, plan_args: list[str], env: dict[str, str],
         profile: int = 0) -> tuple[float, float, dict[str, list[float]], str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_forecast_plan", "--child", variant,
         "--cprofile", str(profile), "--", *plan_args],
        env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"variant {variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    spent = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu, _stages(spent, wall, cpu), done.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("GREENEPOCH_DATA", "../shared/data"),
                    help="folder of the shared data (default $GREENEPOCH_DATA)")
    ap.add_argument("--runs", type=int, default=3, help="warm runs per variant (median)")
    ap.add_argument("--variant", action="append", default=[],
                    help="also measure this variant (repeatable; 'base' is always run; "
                         f"'a+b' applies both): {', '.join(VARIANTS)}")
    ap.add_argument("--cprofile", type=int, default=0,
                    help="print the top N cumulative functions of one base run")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("plan_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.plan_args, args.cprofile)
        return
    unknown = {n for v in args.variant for n in v.split("+")} - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(sorted(unknown))}; "
                 f"variants: {', '.join(VARIANTS)}")
    data = Path(args.data)
    if not (data / "electricitymaps").is_dir():
        raise SystemExit(f"no electricitymaps/ in {data}: give --data or GREENEPOCH_DATA")

    from importlib import resources

    work = Path(tempfile.mkdtemp(prefix="greenepoch-profile-"))
    load = [os.getloadavg()[0]]
    try:
        env = dict(os.environ, GREENEPOCH_DATA=str(data.resolve()), OMP_NUM_THREADS="1",
                   GREENEPOCH_CACHE=str(work / "cache"))
        request = work / "request.toml"
        request.write_text(resources.files("greenepoch.data").joinpath("demo_request.toml")
                           .read_text())
        plan_args = ["plan", str(request), "--forecast", "default", "--out", str(work / "p.json")]
        cold = _one("base", plan_args, env)  # fills the cache
        print(f"cold plan (fits blend): {cold[0]:.1f} s wall, {cold[1]:.1f} s CPU", flush=True)
        if args.cprofile:
            print(_one("base", plan_args, env, args.cprofile)[3])
        variants = ["base", *[v for v in args.variant if v != "base"]]
        for variant in variants[1:]:  # fills the variant's own caches, unmeasured
            _one(variant, plan_args, env)
        runs: dict[str, list[tuple[float, float, dict[str, list[float]], str]]] = (
            defaultdict(list))
        for _ in range(args.runs):  # interleaved: a burst of load hits every variant alike
            for variant in variants:
                runs[variant].append(_one(variant, plan_args, env))
                load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print(f"\nwarm plan, median of {args.runs} runs: wall / CPU s (stages exclusive)")
    print("| stage | " + " | ".join(variants) + " |")
    print("|---" * (len(variants) + 1) + "|")
    for stage in ORDER:
        print(f"| {stage} | " + " | ".join(
            f"{med(r[2][stage][0] for r in runs[v]):.2f} / "
            f"{med(r[2][stage][1] for r in runs[v]):.2f}" for v in variants) + " |")
    print("| **total** | " + " | ".join(
        f"**{med(r[0] for r in runs[v]):.2f} / {med(r[1] for r in runs[v]):.2f}**"
        for v in variants) + " |")
    print(f"| under {TARGET_S:.0f} s: wall / CPU | " + " | ".join(
        f"{sum(r[0] < TARGET_S for r in runs[v])} / {sum(r[1] < TARGET_S for r in runs[v])} "
        f"of {args.runs}" for v in variants) + " |")
    for variant in variants:
        what = "; ".join(VARIANTS[name][0] for name in variant.split("+"))
        print(f"- {variant}: {what}; runs (wall/CPU s) "
              + ", ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in runs[variant]))
    print(f"\n{os.cpu_count()} cores; load average {min(load):.1f}-{max(load):.1f} during "
          "the runs (a shared machine: wall time includes waiting for a core)")


if __name__ == "__main__":
    main()
