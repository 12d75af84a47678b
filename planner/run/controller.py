"""The supervisor's loop: every interval, observe the grid, decide, act, account, log.

One :class:`Controller` runs one training (:class:`~.process.Training`) under one policy
(:class:`~.model.RunPolicy`) on one feed (:mod:`.feeds`) and clock (:mod:`.clock`: the
real one, or a simulated one under ``--simulate``), in one run directory
(:class:`~.state.RunDir`).  At each decision time (the clock's interval boundaries):

1. the training is polled: exit 0 on its own is ``done``; non-zero on its own is a
   crash, restarted from its checkpoint after the :class:`~.process.RestartPolicy`'s
   backoff (event ``restart``), or, when its restarts are used up, the run stops (event
   ``exit``, phase ``failed``);
2. the span since the last account is charged (:class:`~.energy.EnergyAccount`) at the
   feed's actual intensity of that span, in the state the training was in; work done
   grows by the running time x GPUs;
3. the feed is read (its fallback notes become ``fallback`` events) and the policy
   decides on an :class:`~.model.Observation`;
4. the decision is carried out: start (``start``; GREENEPOCH_RESUME=0), resume
   (``resume``; a new segment, GREENEPOCH_RESUME=1) or pause (``pause``: the checkpoint
   signal, the grace, SIGTERM, SIGKILL; in-process mode: the control file);
5. a ``decision`` line is logged and state.json saved.

Between decisions the controller polls the training often (a finish or a crash is
seen within ``poll_s`` wall seconds, not at the next decision).  A stop request
(SIGTERM/SIGINT to the supervisor: :meth:`Controller.stop`) pauses the training with a
checkpoint and ends the loop with an ``exit`` event, phase ``stopped``.  A supervisor
started again on the same run directory (after SIGKILL, or a stop) adopts a training
still running from state.json's pid and start ticks (never starting a second copy),
logs ``restart`` with ``supervisor: true`` and goes on.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from greenepoch.planner.run.clock import Clock, SimClock
from greenepoch.planner.run.energy import EnergyAccount, PowerMeter
from greenepoch.planner.run.feeds import Feed, HistoryFeed, Reading, on_interval
from greenepoch.planner.run.gate import write_control
from greenepoch.planner.run.log import RunLog, iso
from greenepoch.planner.run.model import Decision, Observation, RunJob, RunPolicy
from greenepoch.planner.run.process import EXITED, RestartPolicy, Training
from greenepoch.planner.run.state import RunDir, State

#: wall seconds between polls of the training while waiting for the next decision
POLL_S = 0.05


@dataclass(frozen=True)
class Outcome:
    """How the supervisor's loop ended: ``phase`` done | failed | stopped (or
    ``ended``: the history of a simulation ran out), a one-line ``summary`` and the
    exit code for the command (0 done or stopped, 1 failed)."""

    phase: str
    summary: str
    code: int


class Controller:
    """The loop of the module docstring.

    ``state``: the run's state (a new one, or the one a previous supervisor saved);
    ``meter``: the power meter; ``restarts``: the crash restart policy; ``gate``:
    in-process mode (pause through the control file, the process stays);
    ``poll_s``: wall seconds between polls of the training; ``say``: one-line notes
    for the user (stderr).
    """

    def __init__(self, policy: RunPolicy, feed: Feed, training: Training, clock: Clock,
                 run_dir: RunDir, state: State, job: RunJob, interval: pd.Timedelta,
                 log: RunLog, meter: PowerMeter, *,
                 restarts: RestartPolicy | None = None, gate: bool = False,
                 poll_s: float = POLL_S, say: Callable[[str], None] | None = None) -> None:
        self.policy = policy
        self.feed = feed
        self.training = training
        self.clock = clock
        self.run_dir = run_dir
        self.state = state
        self.job = job
        self.interval = interval
        self.log = log
        self.account = EnergyAccount(meter, energy_kwh=state.energy_kwh,
                                     emissions_kg=state.emissions_kg)
        self.restarts = restarts or RestartPolicy()
        self.gate = gate
        self.poll_s = poll_s
        self.say = say or (lambda _m: None)
        self._stop = threading.Event()
        self._stop_reason = ""
        self._running = False  # the training computes now (in-process: not held by the gate)
        self._accounted: pd.Timestamp | None = None
        self._reading: Reading | None = None
        self._progress: float | None = None

    # ------------------------------------------------------------------ public
    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to checkpoint the training and end (safe from a signal handler)."""
        self._stop_reason = reason
        self._stop.set()

    def run(self) -> Outcome:
        """Run until the training is done, fails for good, or a stop is asked."""
        now = self.clock.now()
        if self.state.phase == "done":
            return Outcome("done", "the run in this directory is done already", 0)
        outcome = self._take_over(now) if self.state.phase != "new" else None
        if self.state.sim_anchor is None and isinstance(self.clock, SimClock):
            self.state.sim_anchor = self.clock.anchor()
        self.begin()
        while outcome is None:
            outcome = self._step()
        self._save()
        self.log.close()
        return outcome

    def begin(self) -> None:
        """Start the accounts at the clock's now (:meth:`run` does; a driver of
        :meth:`tick` calls it once first), or, for a training adopted still running,
        where the previous supervisor's accounts ended: it ran on unwatched."""
        now = self.clock.now()
        since = self.state.accounted
        self._accounted = since if self._running and since is not None and since < now \
            else now

    def write_start(self, spec: RunSpec, now: pd.Timestamp, meter: PowerMeter) -> None:
        """The log's first line, event ``supervisor``: what this run is (command, zone,
        interval, deadline, GPUs, power, mode, what the energy counts)."""
        job = self.job
        self._write("supervisor", now, reason="supervisor started a new run",
                    argv=list(spec.argv), zone=job.zone,
                    interval_s=self.interval.total_seconds(),
                    deadline=None if job.deadline is None else job.deadline.isoformat(),
                    gpus=job.gpus, power_kw=job.power_kw, gpu_hours=job.gpu_hours,
                    simulate=spec.simulate_from is not None,
                    speed=spec.speed if spec.simulate_from is not None else None,
                    mode="live" if spec.live else "history", meter=meter.counts,
                    run_id=self.state.run_id)

    # --------------------------------------------------------------- the loop
    def _step(self) -> Outcome | None:
        """One decision, then the wait until the next one."""
        now = self.clock.now()
        ended = self.tick(now)
        if ended is not None:
            return ended
        return self._wait(self._next_decision(now))

    def tick(self, now: pd.Timestamp) -> Outcome | None:
        """One decision at ``now`` (the clock's now): look at the training, charge,
        observe, decide, act, log.  An :class:`Outcome` when the run ended."""
        ended = self._check_child(now)
        if ended is not None:
            return ended
        if self._stop.is_set():
            return self._shut_down()
        self._charge(now)
        end = getattr(self.feed, "end", None)  # a history's end
        if end is not None and now >= end:
            return self._end_history(now, f"the recorded intensities end at {end.isoformat()}")
        reading = self.feed.observe(now)
        self._reading = reading
        for note in self.feed.fallbacks():
            self._write("fallback", now, reason=note)
        decision = self.policy.decide(self._observation(now, reading))
        ended = self._act(now, decision)
        if ended is not None:
            return ended
        self._write("decision", now, reason=decision.reason, run=decision.run,
                    expected_saving_kg=decision.expected_saving_kg,
                    forecast_issued=None if reading.issued is None else
                    reading.issued.isoformat())
        self.state.last_decision = now
        self._save()
        return None

    def _next_decision(self, now: pd.Timestamp) -> pd.Timestamp:
        return now.floor(self.interval) + self.interval

    def _wait(self, until: pd.Timestamp) -> Outcome | None:
        """Sleep until ``until``, polling the training and the stop request."""
        while True:
            left = self.clock.wall_seconds(until - self.clock.now())
            if left <= 0:
                return None
            if self._stop.wait(min(left, self.poll_s)):
                return None  # the next step shuts down
            if self.training.alive is False and self.state.child_pid is not None:
                return None  # it ended: the next step sees how

    def _observation(self, now: pd.Timestamp, reading: Reading) -> Observation:
        forecast = None if reading.forecast is None else \
            on_interval(reading.forecast, now, self.interval)
        since = self.state.since if self.state.since is not None else now
        progress = self._read_progress()
        return Observation(
            now=now, interval=self.interval, intensity=reading.intensity,
            provenance=reading.label, stale=reading.stale, forecast=forecast,
            issued=reading.issued, running=self._running, since=min(since, now),
            done_gpu_h=self.state.done_gpu_h, progress=progress)

    def _read_progress(self) -> float | None:
        raw = self.run_dir.progress()
        value = None if raw is None else raw.get("progress")
        self._progress = None if value is None else float(value)
        return self._progress

    # --------------------------------------------------------------- actions
    def _act(self, now: pd.Timestamp, decision: Decision) -> Outcome | None:
        if decision.run and not self._running:
            self._begin(now, decision.reason)
        elif not decision.run and self._running:
            return self._pause(now, decision.reason)
        return None

    def _begin(self, now: pd.Timestamp, reason: str) -> None:
        """Start the training, or resume it (a new segment, or the gate let go)."""
        first = self.state.phase == "new"
        if self.gate and self.training.alive:
            write_control(self.run_dir.control_path, pause=False, reason=reason)
        else:
            if not first:
                self.state.segment += 1
            self._start_child(resume=not first)
        self._set_phase("running", now)
        self._write("start" if first else "resume", now, reason=reason)

    def _start_child(self, resume: bool, pause: bool = False) -> None:
        if self.gate:  # the gate reads the control file from its first step
            write_control(self.run_dir.control_path, pause=pause,
                          reason="paused" if pause else "start")
        child = self.training.start(self.state.segment, resume=resume)
        self.state.child_pid, self.state.child_start_ticks = child.pid, child.start_ticks
        self._save()  # before anything else: a supervisor killed now must find it

    def _pause(self, now: pd.Timestamp, reason: str) -> Outcome | None:
        if self.gate:
            write_control(self.run_dir.control_path, pause=True, reason=reason)
            self._charge(self.clock.now())
            self._set_phase("paused", now)
            self._write("pause", now, reason=reason, how="gate")
            return None
        self._mark_pausing()
        ended = self.training.pause()
        self._charge(self.clock.now())  # the checkpoint's save ran at full draw
        self._forget_child()
        if (ended.how == EXITED and ended.returncode == 0) or self._finished():
            return self._done(now)
        how = {"clean": "checkpointed and exited", "term": "terminated (SIGTERM) after "
               f"the {self.training.grace_s:g} s grace", "kill": "killed (SIGKILL) after "
               "SIGTERM"}.get(ended.how, f"had ended (exit {ended.returncode})")
        self._set_phase("paused", now)
        self._write("pause", now, reason=f"{reason}; training {how}", how=ended.how,
                    pause_s=round(ended.seconds, 3))
        return None

    def _mark_pausing(self) -> None:
        """Saved before the checkpoint signal: a supervisor killed during the pause
        leaves a state whose next supervisor takes the exit 0 for a checkpoint."""
        self.state.phase = "pausing"
        self._save()

    def _finished(self) -> bool:
        return self._progress is not None and self._read_progress() == 1.0

    def _check_child(self, now: pd.Timestamp) -> Outcome | None:
        """Whether the training ended on its own since the last look: done, or a crash
        (restarted, or the run fails)."""
        if self.state.child_pid is None or self.training.alive:
            return None
        code = self.training.poll()
        self._charge(now)
        self._forget_child()
        if code == 0:
            return self._done(now)
        return self._crashed(now, code)

    def _crashed(self, now: pd.Timestamp, code: int | None) -> Outcome | None:
        delay = self.restarts.delay(self.state.restarts)
        what = f"the training exited with code {code}" if code is not None and code >= 0 \
            else f"the training was killed by signal {-(code or 0)}"
        if delay is None:
            summary = (f"{what}; gave up after {self.state.restarts} restart(s) "
                       f"(--max-restarts {self.restarts.max_restarts}); its output is above, "
                       f"the run log in {self.log.path}")
            self._set_phase("failed", now)
            self._write("exit", now, reason=summary, returncode=code)
            return Outcome("failed", summary, 1)
        self.say(f"{what}; restarting in {delay:g} s")
        if self._stop.wait(delay):
            self._set_phase("paused", now)
            return self._shut_down()
        self.state.restarts += 1
        self.state.segment += 1
        now = self.clock.now()
        self._accounted = now
        if self._running or self.gate:
            self._start_child(resume=True, pause=not self._running)
        self._write("restart", now, reason=f"{what}; restart {self.state.restarts} of "
                    f"{self.restarts.max_restarts} from the last checkpoint", returncode=code)
        return None

    def _done(self, now: pd.Timestamp) -> Outcome:
        self._set_phase("done", now)
        self._running = False
        summary = (f"training done at {iso(now)}: {self.account.energy_kwh:.3f} kWh, "
                   f"{self.account.emissions_kg:.3f} kg CO2eq, {self.state.segment + 1} "
                   f"segment(s), {self.state.restarts} restart(s)")
        self._write("done", now, reason=summary)
        return Outcome("done", summary, 0)

    def _shut_down(self) -> Outcome:
        """The stop request: checkpoint the training and end cleanly."""
        now = self.clock.now()
        self._charge(now)
        how = "paused already"
        if self.training.alive:
            if self.gate:
                write_control(self.run_dir.control_path, pause=True, stop=True,
                              reason=self._stop_reason)
            self._mark_pausing()
            ended = self.training.pause()
            self._charge(self.clock.now())
            how = {"clean": "checkpointed", "term": "terminated after the grace",
                   "kill": "killed", "exited": "had ended"}[ended.how]
            self._forget_child()
            if ended.how == EXITED and ended.returncode == 0:
                return self._done(now)
        self._set_phase("stopped", now)
        summary = (f"supervisor stopped ({self._stop_reason}); the training {how}; start the "
                   "same command again to continue the run")
        self._write("exit", now, reason=summary)
        return Outcome("stopped", summary, 0)

    def _end_history(self, now: pd.Timestamp, why: str) -> Outcome:
        self._stop_reason = f"the simulated history ends: {why}"
        outcome = self._shut_down()
        return replace(outcome, phase="ended", code=1)

    # ------------------------------------------------------------ take over
    def _take_over(self, now: pd.Timestamp) -> Outcome | None:
        """A supervisor started on a run directory with a state: adopt the training
        state.json names if it still runs, else learn how it ended."""
        state = self.state
        adopted = "no training was running"
        pausing = state.phase == "pausing"  # killed during a pause: finish it
        running_before = state.phase == "running"
        if state.child_pid is not None and state.child_start_ticks is not None:
            found = self.training.adopt(state.child_pid, state.child_start_ticks)
            if found.status == "running" and pausing:
                ended = self.training.pause()
                self._forget_child()
                adopted = f"finished pausing the training (it {ended.how})"
            elif found.status == "running":
                adopted = f"adopted the running training (pid {state.child_pid})"
                self._running = running_before or not self.gate
                if not running_before and not self.gate:
                    state.phase = "running"
            else:
                self._forget_child()
                if found.status == "exited" and found.returncode == 0 \
                        and state.phase not in ("paused", "pausing"):
                    self._write("restart", now, reason="supervisor started again; the "
                                "training had finished", supervisor=True)
                    return self._done(now)
                adopted = (f"the training had ended (exit {found.returncode})"
                           if found.status == "exited" else "the training was gone")
                if found.leftovers:
                    adopted += f"; ended {found.leftovers} leftover process(es)"
        if state.phase in ("stopped", "failed", "pausing"):
            state.phase = "paused"
        if state.phase == "running" and not self._running:
            state.phase = "paused"  # it ended while nobody watched: the policy resumes it
        self._write("restart", now, reason=f"supervisor started again on "
                    f"{self.run_dir.path}; {adopted}", supervisor=True)
        return None

    # ------------------------------------------------------------ bookkeeping
    def _charge(self, now: pd.Timestamp) -> None:
        """Charge the span since the last account in the current state."""
        start = self._accounted
        if start is None or now <= start:
            self._accounted = now if start is None else start
            return
        seconds = (now - start).total_seconds()
        intensity = self.feed.actual(start, now) if self._running else None
        if intensity is not None and not math.isfinite(intensity):
            intensity = None
        self.account.add(seconds, self._running, intensity)
        if self._running:
            self.state.done_gpu_h += seconds / 3600.0 * self.job.gpus
        self.state.energy_kwh = self.account.energy_kwh
        self.state.emissions_kg = self.account.emissions_kg
        self.state.accounted = self._accounted = now

    def _set_phase(self, phase: str, now: pd.Timestamp) -> None:
        running = phase == "running"
        if running != self._running or self.state.since is None:
            self.state.since = now
        self._running = running
        self.state.phase = phase
        self._save()

    def _forget_child(self) -> None:
        self.state.child_pid = self.state.child_start_ticks = None
        self._save()

    def _save(self) -> None:
        self.run_dir.save(self.state)

    def _write(self, event: str, now: pd.Timestamp, *, reason: str, **extra: Any) -> None:
        reading = self._reading
        self.log.write(
            event, now, intensity=None if reading is None else reading.intensity,
            reason=reason,
            provenance=None if reading is None else reading.provenance,
            state="running" if self._running else "paused",
            energy_kwh=self.account.energy_kwh, emissions_kg=self.account.emissions_kg,
            progress=self._progress, segment=self.state.segment,
            done_gpu_h=round(self.state.done_gpu_h, 6), **extra)


# ------------------------------------------------------------------ the whole run
@dataclass(frozen=True)
class RunSpec:
    """Everything ``greenepoch run`` is asked (the CLI fills it; tests may too).

    ``policy_options``: the policy's own options (:func:`.policies.make_policy`);
    ``data``: the history of ``--simulate`` (a folder, a source, or None: the synthetic
    default) and, live, what the own model is fitted on; ``simulate_from``/``speed``:
    accelerated history (None: real time, live); ``model``/``fit_until``: the
    forecast model and the end of its fit; ``grace_s``/``term_grace_s``: the pause's
    waits; ``backoff_s``: the first crash restart's wait; ``meter``: configured | nvml.
    """

    argv: tuple[str, ...]
    policy: str
    job: RunJob
    policy_options: dict[str, Any]
    interval: pd.Timedelta = pd.Timedelta("15min")
    signal: str = "direct"
    data: Any = None
    live: bool = False
    simulate_from: pd.Timestamp | None = None
    speed: float = 3600.0
    model: str = "default"
    fit_until: pd.Timestamp | None = None
    run_dir: str = "greenepoch-run"
    log_path: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_signal: int = 10  # SIGUSR1
    grace_s: float = 120.0
    term_grace_s: float = 30.0
    max_restarts: int = 3
    backoff_s: float = 10.0
    gate: bool = False
    meter: str = "configured"
    provider: str | None = None
    allow_default: bool | None = None
    archive_url: str | None = None


def _live_slot(interval: pd.Timedelta) -> str:
    """The plan slot a live run reads its latest actuals on: the decision interval when it
    is one (15min, 30min, 1h), else the largest slot that divides it (15min)."""
    from greenepoch.data.intensity.frame import SLOTS

    fits = [name for name, width in SLOTS.items() if interval % width == pd.Timedelta(0)]
    return max(fits, key=lambda name: SLOTS[name]) if fits else "15min"


def _horizon(spec: RunSpec, start: pd.Timestamp) -> pd.Timedelta:
    """How far each forecast must reach: past the deadline, at least 72 h."""
    from greenepoch.planner.run.feeds import DEFAULT_HORIZON

    deadline = spec.job.deadline
    if deadline is None:
        return DEFAULT_HORIZON
    return max(DEFAULT_HORIZON, (deadline - start).ceil("1h") + pd.Timedelta("2h"))


def make_feed(spec: RunSpec, start: pd.Timestamp, say: Callable[[str], None]) -> Feed:
    """The feed of ``spec``: live providers, or the history of ``spec.data``."""
    from greenepoch.planner.run.feeds import LiveFeed

    if spec.live:
        from greenepoch.data.archive.store import Archive, archive_url
        from greenepoch.data.providers.config import load_config

        config = load_config()
        archive = Archive(archive_url(spec.archive_url or config.archive))
        wants = spec.policy == "replan"  # threshold and plan decide without a forecast
        return LiveFeed(spec.job.zone, config=config, signal=spec.signal,
                        provider=spec.provider, archive=archive,
                        allow_default=spec.allow_default, history=spec.data,
                        model=spec.model, horizon=_horizon(spec, start) if wants else None,
                        progress=say, slot=_live_slot(spec.interval))
    return HistoryFeed(spec.data, spec.job.zone, signal=spec.signal, model=spec.model,
                       fit_until=spec.fit_until, horizon=_horizon(spec, start), progress=say)


def _open_state(run_dir: RunDir, spec: RunSpec) -> State:
    """The run directory's state, or a new one; a different command is refused."""
    from greenepoch.planner.run.state import RunDirError

    state = run_dir.load()
    if state is None:
        return State.new(spec.policy, list(spec.argv))
    if state.argv and state.argv != list(spec.argv):
        raise RunDirError(
            f"{run_dir.path} holds a run of another command ({' '.join(state.argv)}); give "
            "the same command to continue it, or another run directory")
    return state


def _clock(spec: RunSpec, state: State) -> Clock:
    from greenepoch.planner.run.clock import RealClock

    if spec.simulate_from is None:
        return RealClock()
    if state.sim_anchor is not None:  # a restarted supervisor: the same timeline
        return SimClock.resume(state.sim_anchor)
    return SimClock(spec.simulate_from, spec.speed)


def supervise(spec: RunSpec, *, say: Callable[[str], None] | None = None,
              install_signals: bool = True,
              built: Callable[[Controller], None] | None = None) -> Outcome:
    """Run ``spec`` to its end: lock the run directory, build the feed, the policy and
    the training, and loop (:class:`Controller`).  SIGTERM and SIGINT (when
    ``install_signals``, in the main thread) stop it cleanly; ``built`` is given the
    controller before it starts (an embedding program's handle on :meth:`Controller.stop`)."""
    import signal as signals

    from greenepoch.planner.run.energy import open_meter
    from greenepoch.planner.run.policies import make_policy

    say = say or (lambda _m: None)
    run_dir = RunDir(spec.run_dir)
    # bad options are refused before the run directory is made
    policy = make_policy(spec.policy, spec.job, **spec.policy_options)
    if spec.simulate_from is not None:
        SimClock(spec.simulate_from, spec.speed)  # checks --speed
    with run_dir.lock():
        state = _open_state(run_dir, spec)
        ahead = spec.simulate_from if state.sim_anchor is None else state.sim_anchor.sim
        feed = make_feed(spec, ahead or pd.Timestamp.now(tz="UTC"), say)
        if isinstance(feed, HistoryFeed) and state.sim_anchor is None \
                and spec.simulate_from is not None:
            feed.observe(spec.simulate_from)  # fit the model before the clock starts
            feed.fallbacks()
        clock = _clock(spec, state)
        start = clock.now()
        meter, note = open_meter(spec.meter, gpus=spec.job.gpus, power_kw=spec.job.power_kw,
                                 simulate=spec.simulate_from is not None)
        if note:
            say(note)
        training = Training(list(spec.argv), run_dir,
                            checkpoint_dir=spec.checkpoint_dir or run_dir.checkpoints,
                            checkpoint_signal=spec.checkpoint_signal, grace_s=spec.grace_s,
                            term_grace_s=spec.term_grace_s, gate=spec.gate)
        log = RunLog(spec.log_path or run_dir.log_path, policy=policy.name)
        controller = Controller(policy, feed, training, clock, run_dir, state, spec.job,
                                spec.interval, log, meter,
                                restarts=RestartPolicy(spec.max_restarts, spec.backoff_s),
                                gate=spec.gate, say=say)
        if built is not None:
            built(controller)
        previous: dict[signals.Signals, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signals.SIGTERM, signals.SIGINT):
                previous[sig] = signals.signal(
                    sig, lambda n, _f: controller.stop(f"{signals.Signals(n).name} received"))
        try:
            if state.phase == "new":
                controller.write_start(spec, start, meter)
            return controller.run()
        finally:
            for sig, handler in previous.items():
                signals.signal(sig, handler)
            log.close()
