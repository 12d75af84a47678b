"""``greenepoch run``: supervise a training command on the grid's carbon intensity.

Parses the options into a :class:`~greenepoch.planner.run.controller.RunSpec` and calls
:func:`~greenepoch.planner.run.controller.supervise`; the run's story goes to the run log
(JSON lines), one summary line to stderr at the end.  Exit code 0 when the training is
done or the supervisor was stopped cleanly (SIGTERM/SIGINT), 1 when the training failed
for good (or a simulation's history ran out first), 2 for bad input.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import click
from greenepoch.data.errors import RequestError, param
from greenepoch.data.timeparse import duration, utc
from greenepoch.planner.cli.options import (
    data_option,
    forecast_option,
    live_options,
    signal_option,
)

POLICY_CHOICES = ("threshold", "plan", "replan")


def _signal_number(text: str) -> int:
    name = text.upper()
    if name.isdigit():
        return int(name)
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise RequestError(f"{param('checkpoint_signal')} = {text!r}: not a signal name; "
                           "use e.g. SIGUSR1, SIGUSR2 or SIGINT") from None


def _check(policy: str, opts: dict[str, Any]) -> None:
    """Combinations click cannot check: one error each, naming the options."""
    if opts["live"] and opts["simulate"]:
        raise click.UsageError("--live and --simulate exclude each other: --simulate replays "
                               "history from --data")
    if opts["simulate"] and opts["from_time"] is None:
        raise click.UsageError("--simulate needs --from TIME (the simulated start, e.g. "
                               "2023-06-01T00:00Z)")
    if not opts["simulate"] and (opts["from_time"] is not None or opts["speed"] is not None):
        raise click.UsageError("--from and --speed go with --simulate")
    if not opts["simulate"] and not opts["live"]:
        raise click.UsageError("give --live (the grid now) or --simulate --from TIME "
                               "(accelerated history from --data)")
    if policy == "threshold" and opts["pause_above"] is None:
        raise click.UsageError("--policy threshold needs --threshold G (the pause level, "
                               "g/kWh)")
    if policy == "plan" and (opts["plan"] is None or opts["job_name"] is None):
        raise click.UsageError("--policy plan needs --plan PLAN.json and --job NAME")
    if policy == "replan" and opts["deadline"] is None:
        raise click.UsageError("--policy replan needs --deadline TIME")
    if policy == "replan" and opts["gpu_hours"] is None:
        raise click.UsageError("--policy replan needs --gpu-hours H (the work to plan)")
    if policy != "threshold" and (opts["pause_above"] is not None
                                  or opts["resume_below"] is not None):
        raise click.UsageError(f"--threshold and --resume-below go with --policy threshold, "
                               f"not {policy}")
    if policy != "plan" and (opts["plan"] is not None or opts["job_name"] is not None):
        raise click.UsageError(f"--plan and --job go with --policy plan, not {policy}")


def _policy_options(policy: str, opts: dict[str, Any]) -> dict[str, Any]:
    if policy == "threshold":
        return {"pause_above": opts["pause_above"], "resume_below": opts["resume_below"],
                "min_run": opts["min_run"], "min_pause": opts["min_pause"]}
    if policy == "plan":
        return {"plan": opts["plan"], "job_name": opts["job_name"], "zone": opts["zone"]}
    return {}


def build_spec(cmd: tuple[str, ...], opts: dict[str, Any]) -> Any:
    """The :class:`RunSpec` of the parsed options."""
    from greenepoch.planner.run.controller import RunSpec
    from greenepoch.planner.run.model import RunJob

    policy = opts["policy"] or ("replan" if opts["deadline"] is not None else "threshold")
    _check(policy, opts)
    if not cmd:
        raise click.UsageError("no training command; give it after --, e.g. "
                               "greenepoch run ... -- python train.py")
    interval = duration(opts["interval"], param("interval"))
    if interval < pd_seconds(1):
        raise RequestError(f"{param('interval')} = {opts['interval']!r}: must be 1 s or "
                           "longer, e.g. 15min")
    deadline = None if opts["deadline"] is None else utc(opts["deadline"], param("deadline"))
    start = None if opts["from_time"] is None else utc(opts["from_time"], param("from_time"))
    if deadline is not None and start is not None and deadline <= start:
        raise RequestError(f"{param('deadline')} {deadline.isoformat()} is not after "
                           f"{param('from_time')} {start.isoformat()}: the run would start "
                           "past its deadline")
    job = RunJob(gpus=opts["gpus"], power_kw=opts["power_kw"], gpu_hours=opts["gpu_hours"],
                 deadline=deadline,
                 restart_h=duration(opts["restart_h"], param("restart_h")).total_seconds()
                 / 3600.0,
                 margin=duration(opts["margin"], param("margin")), zone=opts["zone"])
    return RunSpec(
        argv=tuple(cmd), policy=policy, job=job,
        policy_options=_policy_options(policy, opts), interval=interval,
        signal=opts["signal"], data=opts["data_dir"], live=opts["live"],
        simulate_from=start,
        speed=3600.0 if opts["speed"] is None else opts["speed"], model=opts["model"],
        fit_until=None if opts["fit_until"] is None else utc(opts["fit_until"],
                                                             param("fit_until")),
        run_dir=opts["run_dir"], log_path=opts["log_path"],
        checkpoint_dir=opts["checkpoint_dir"],
        checkpoint_signal=_signal_number(opts["checkpoint_signal"]),
        grace_s=duration(opts["grace"], param("grace")).total_seconds(),
        term_grace_s=duration(opts["term_grace"], param("term_grace")).total_seconds(),
        max_restarts=opts["max_restarts"],
        backoff_s=duration(opts["restart_backoff"], param("restart_backoff")).total_seconds(),
        gate=opts["in_process"], meter=opts["meter"], provider=opts["provider"],
        allow_default=opts["allow_default"], archive_url=opts["archive_url"])


def pd_seconds(n: float) -> Any:
    import pandas as pd

    return pd.Timedelta(seconds=n)


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--policy", type=click.Choice(POLICY_CHOICES), default=None,
              help="threshold: pause above --threshold, resume at or below --resume-below; "
              "plan: follow a plan's segments for --job; replan: re-plan the rest of the "
              "work on each new forecast. Default: replan with --deadline, else threshold.")
@click.option("--zone", required=True, help="Grid zone whose intensity drives the run, "
              "e.g. DE or GB.")
@click.option("--threshold", "pause_above", type=float, default=None, metavar="G",
              help="threshold: pause when the intensity is above G gCO2eq/kWh.")
@click.option("--resume-below", "resume_below", type=float, default=None, metavar="G",
              help="threshold: resume at or below G (default: --threshold; lower it for "
              "hysteresis).")
@click.option("--min-run", "min_run", default="1h", show_default=True,
              help="threshold: the shortest run before a pause.")
@click.option("--min-pause", "min_pause", default="30min", show_default=True,
              help="threshold: the shortest pause before a resume (the deadline guard "
              "overrides it).")
@click.option("--deadline", default=None, metavar="TIME",
              help="The work must be done by TIME (ISO 8601 with offset); the policies "
              "resume regardless when the work left needs the time left less --margin.")
@click.option("--margin", default="1h", show_default=True,
              help="The deadline guard's safety margin.")
@click.option("--gpus", type=int, default=1, show_default=True, help="GPUs the training uses.")
@click.option("--gpu-hours", "gpu_hours", type=float, default=None, metavar="H",
              help="The training's total work in GPU-hours (else its reported progress).")
@click.option("--power-kw", "power_kw", type=float, default=0.3, show_default=True,
              help="Configured draw per GPU, kW (fold the PUE in if you count it).")
@click.option("--meter", type=click.Choice(["configured", "nvml"]), default="configured",
              show_default=True, help="Energy: the configured draw, or measured through NVML "
              "(extra 'nvml'; falls back to the configured draw, saying so).")
@click.option("--restart-cost", "restart_h", default="0min", show_default=True,
              help="Time lost per pause and resume (checkpoint save and reload): the "
              "deadline guard and replan's pause/run trade-off count it.")
@click.option("--plan", "plan", default=None, metavar="PLAN.json",
              help="plan: the plan JSON (greenepoch plan --json / --out).")
@click.option("--job", "job_name", default=None, metavar="NAME",
              help="plan: the job of the plan to follow.")
@click.option("--interval", default="15min", show_default=True,
              help="Decision interval.")
@signal_option
@live_options
@data_option
@forecast_option
@click.option("--fit-until", "fit_until", default=None, metavar="TIME",
              help="--simulate: fit the forecast model on the history before TIME (default: "
              "the Monday of --from's week).")
@click.option("--simulate", is_flag=True,
              help="Accelerated history: a simulated clock from --from over --data, at "
              "--speed; the training runs for real.")
@click.option("--from", "from_time", default=None, metavar="TIME",
              help="--simulate: the simulated start (ISO 8601 with offset).")
@click.option("--speed", type=float, default=None, metavar="X",
              help="--simulate: simulated seconds per wall second (default 3600: an hour a "
              "second).")
@click.option("--run-dir", "run_dir", default="greenepoch-run", show_default=True,
              help="The run directory: lock, state.json, checkpoints/, run.jsonl. Run the "
              "same command again on it to continue a stopped or killed run.")
@click.option("--log", "log_path", default=None, metavar="RUNLOG.jsonl",
              help="The run log (default RUN_DIR/run.jsonl).")
@click.option("--checkpoint-dir", "checkpoint_dir", default=None, metavar="DIR",
              help="The training's GREENEPOCH_CHECKPOINT_DIR (default RUN_DIR/checkpoints).")
@click.option("--checkpoint-signal", "checkpoint_signal", default="SIGUSR1",
              show_default=True, help="The signal asking the training to checkpoint and exit.")
@click.option("--grace", default="120s", show_default=True,
              help="Wall time a pause waits after the checkpoint signal before SIGTERM.")
@click.option("--term-grace", "term_grace", default="30s", show_default=True,
              help="Wall time after SIGTERM before SIGKILL.")
@click.option("--max-restarts", "max_restarts", type=click.IntRange(min=0), default=3,
              show_default=True, help="Restarts of a training that exits non-zero on its "
              "own before the run stops.")
@click.option("--restart-backoff", "restart_backoff", default="10s", show_default=True,
              help="Wall wait before the first such restart (doubled at each next one).")
@click.option("--in-process", "in_process", is_flag=True,
              help="In-process mode: the training pauses in gate.wait() (greenepoch.planner."
              "run.gate, the Lightning and Transformers callbacks) instead of exiting.")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD ARGS...")
def run(cmd: tuple[str, ...], **opts: Any) -> None:
    """Run a training command and pause/resume it on the grid's carbon intensity.

    Every --interval the policy decides whether the training runs now; a pause sends
    the checkpoint signal (the training saves and exits 0), a resume starts CMD again
    with GREENEPOCH_RESUME=1.  The run log (JSON lines) records every decision; render
    it with 'greenepoch report RUNLOG'.  See docs/run.md of the source repository.
    """
    from greenepoch.planner.run.controller import supervise

    spec = build_spec(cmd, opts)
    outcome = supervise(spec, say=lambda m: click.echo(f"greenepoch: {m}", err=True))
    click.echo(f"greenepoch: {outcome.summary}", err=True)
    raise SystemExit(outcome.code)


def _thresholds(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RequestError(f"{param('thresholds')} = {text!r}: expected g/kWh levels separated "
                           "by commas, e.g. 250,300,350") from None


@click.command("run-sweep")
@click.option("--zone", required=True, help="Grid zone, e.g. DE.")
@data_option
@click.option("--from", "from_time", required=True, metavar="TIME",
              help="The first run's start (ISO 8601 with offset).")
@click.option("--to", "to_time", required=True, metavar="TIME",
              help="No run starts at or after TIME.")
@click.option("--every", default="24h", show_default=True, help="Between two run starts.")
@click.option("--gpu-hours", "gpu_hours", type=float, required=True, metavar="H",
              help="Each run's work, GPU-hours.")
@click.option("--gpus", type=int, default=1, show_default=True)
@click.option("--power-kw", "power_kw", type=float, default=0.3, show_default=True,
              help="Configured draw per GPU, kW.")
@click.option("--thresholds", default=None, metavar="G,G,...",
              help="threshold policy: the pause levels to try, g/kWh.")
@click.option("--resume-gap", "resume_gap", type=float, default=0.0, show_default=True,
              help="threshold policy: resume at the level less this (hysteresis), g/kWh.")
@click.option("--min-run", "min_run", default="1h", show_default=True)
@click.option("--min-pause", "min_pause", default="30min", show_default=True)
@click.option("--slack", default="24h", show_default=True,
              help="Each run's deadline: run-now's finish plus this.")
@click.option("--restart-cost", "restart_h", default="15min", show_default=True,
              help="Time lost per resume (work redone), counted by the study training.")
@click.option("--margin", default="1h", show_default=True, help="The deadline guard's margin.")
@click.option("--interval", default="15min", show_default=True, help="Decision interval.")
@click.option("--policies", default="threshold,replan", show_default=True,
              help="Policies to run, comma-separated (threshold, replan).")
@signal_option
@forecast_option
@click.option("--fit-until", "fit_until", default=None, metavar="TIME",
              help="Fit the forecast model on the history before TIME (default: the Monday "
              "of --from's week).")
@click.option("--json", "as_json", is_flag=True, help="Print every run as JSON lines.")
def run_sweep(**opts: Any) -> None:
    """The --simulate sweep: many runs on history (start times x thresholds, and the
    other policies), each against run-now and the oracle.

    The same controller and policies as 'greenepoch run', against a study model of a
    training (work accumulates while it runs; each resume loses --restart-cost), on a
    clock that jumps from decision to decision.  Prints, per policy and threshold:
    emissions, saving vs run-now, share of the oracle's saving, mean and p95 delay,
    pauses, work redone, deadlines missed.
    """
    import pandas as pd
    from greenepoch.planner.run.feeds import HistoryFeed
    from greenepoch.planner.run.sweep import SweepSpec, summarise, sweep

    start = utc(opts["from_time"], param("from_time"))
    end = utc(opts["to_time"], param("to_time"))
    every = duration(opts["every"], param("every"))
    if end <= start or every <= pd.Timedelta(0):
        raise RequestError(f"{param('to_time')} must be after {param('from_time')} and "
                           f"{param('every')} above 0")
    policies = tuple(p.strip() for p in opts["policies"].split(",") if p.strip())
    spec = SweepSpec(
        zone=opts["zone"], starts=list(pd.date_range(start, end, freq=every,
                                                     inclusive="left")),
        gpu_hours=opts["gpu_hours"], gpus=opts["gpus"], power_kw=opts["power_kw"],
        slack=duration(opts["slack"], param("slack")),
        restart_h=duration(opts["restart_h"], param("restart_h")).total_seconds() / 3600,
        margin=duration(opts["margin"], param("margin")),
        interval=duration(opts["interval"], param("interval")),
        thresholds=_thresholds(opts["thresholds"]), resume_gap=opts["resume_gap"],
        min_run=opts["min_run"], min_pause=opts["min_pause"], policies=policies)
    fit_until = None if opts["fit_until"] is None else utc(opts["fit_until"],
                                                           param("fit_until"))
    horizon = max(pd.Timedelta("72h"), spec.slack + pd.Timedelta(
        hours=spec.gpu_hours / spec.gpus) + pd.Timedelta("2h"))
    feed = HistoryFeed(opts["data_dir"], spec.zone, signal=opts["signal"], model=opts["model"],
                       fit_until=fit_until, horizon=horizon,
                       progress=lambda m: click.echo(f"greenepoch: {m}", err=True))
    results = sweep(spec, feed, progress=lambda m: click.echo(f"greenepoch: {m}", err=True))
    if opts["as_json"]:
        for r in results:
            row = dict(r.__dict__, start=r.start.isoformat())
            click.echo(json.dumps(row, allow_nan=True))
        return
    table = summarise(results)
    click.echo(f"{len(spec.starts)} start(s) in {spec.zone}, {spec.gpu_hours:g} GPU-h on "
               f"{spec.gpus} GPU(s), deadline run-now + {opts['slack']}, restart cost "
               f"{opts['restart_h']}; emissions at the recorded intensities; the oracle: the "
               "cheapest hours before each deadline, no restart cost (an upper bound)")
    click.echo(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
