"""Report of a ``greenepoch run`` log (JSON lines, docs/run.md "The run log").

The log is read by the run's own reader (:func:`greenepoch.planner.run.log.read_log`):
each line a JSON object with ``time`` (ISO 8601 UTC) and ``event``, other keys
optional; unknown events and keys are listed or ignored, never an error.  A line that
breaks this is one error naming the file and the line.

What the report states, each figure with what it was computed on:

* the timeline: running and paused spans, as the log's ``state`` says after each line
  (without it: ``start``, ``resume`` and a training ``restart`` -> running, ``pause``
  and ``exit`` -> paused, ``done`` -> ended), against the intensity each line saw (held
  until the next line), its provenance (actual or forecast, stale marked) and the
  fallback events;
* energy and emissions: the log's cumulative ``energy_kwh`` and ``emissions_kg`` on its
  last line that has them (the controller's figures, at the intensities it saw);
* run now: the counterfactual of running straight through from the first line for
  the same running time; it and this run are both charged at the run's mean draw
  (energy / running time) on one series of intensities (:func:`intensity_pieces`: the
  actual intensity of each span when the log carries it; else the intensity the log
  charged each running span at and, while paused, the one the lines saw), so that the
  saving compares like with like; its completion and the run's delay
  against it (the running time includes each restart's reload, so the counterfactual
  is charged it too);
* pauses, resumes, restarts of the training and of the supervisor, fallbacks, and work
  redone after resumes when the log records it (``redone_s`` on a line: seconds of
  work repeated).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.report.build import Report

RUNNING, PAUSED, ENDED = "running", "paused", "ended"
EVENT_STATES = {"start": RUNNING, "resume": RUNNING, "restart": RUNNING, "pause": PAUSED,
                "exit": PAUSED, "done": ENDED}
ACTUAL_KEY = "actual_intensity"  # g/kWh of the span ending at the line (see intensity_pieces)
EVENT_ROWS = 200  # the events table lists at most this many (decisions are left out)


class RunLogError(GreenEpochError):
    """A run log that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class LogLine:
    """One line of a run log: its time, event and all its keys."""

    time: pd.Timestamp
    event: str
    keys: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.keys.get(key)

    def number_of(self, key: str) -> float | None:
        """The key's value as a finite number, None when absent, null or not a number."""
        value = self.keys.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RunHistory:
    """The lines of one run log, as read."""

    path: Path
    lines: tuple[LogLine, ...]
    notes: tuple[str, ...] = ()


def is_run_log(path: str | Path) -> bool:
    """True for a run log: a ``.jsonl`` file that is no what-if results file, or any
    file whose first line is a JSON object with ``event`` and ``time``."""
    from greenepoch.planner.whatif.results import is_result_file

    file = Path(path)
    if not file.is_file() or is_result_file(file):
        return False
    if file.suffix == ".jsonl":
        return True
    try:
        with open(file, encoding="utf-8") as fh:
            head = json.loads(fh.readline())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(head, dict) and "event" in head and "time" in head


def read_run_log(path: str | Path) -> RunHistory:
    """The run log at ``path``, read by :func:`greenepoch.planner.run.log.read_log` (the
    one reader of the format: a line that is not a JSON object with ``time`` and
    ``event`` is one error naming its number; a line cut short by a killed supervisor is
    left out), each ``time`` an ISO 8601 time with its UTC offset."""
    from greenepoch.planner.run.log import read_log

    file = Path(path)
    try:
        items = read_log(file)
    except UnicodeDecodeError as exc:
        raise RunLogError(f"{file}: not a UTF-8 run log ({exc.reason} at byte "
                          f"{exc.start})") from None
    if not items:
        raise RunLogError(f"{file}: the run log holds no complete line (a last line cut "
                          "short is left out); give the log a 'greenepoch run' writes "
                          "(RUN_DIR/run.jsonl by default)")
    lines = [_line(file, n, item) for n, item in enumerate(items, 1)]
    notes = [f"entry {n + 1} ({after.event} at {after.get('time')}) is dated before the "
             f"one above it ({before.get('time')}); it adds no time"
             for n, (before, after) in enumerate(itertools.pairwise(lines), 1)
             if after.time < before.time]
    return RunHistory(file, tuple(lines), tuple(notes))


def _line(file: Path, n: int, keys: dict[str, Any]) -> LogLine:
    """Entry ``n`` (from 1, blank and cut lines not counted) with its time checked."""
    event, text = keys.get("event"), keys.get("time")
    where = f"{file}: entry {n} ({event!r} at {text!r})"
    if not isinstance(event, str) or not event or not isinstance(text, str):
        raise RunLogError(f"{where}: 'time' and 'event' must be text")
    try:
        time = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise RunLogError(f"{where}: the time is not ISO 8601, e.g. "
                          "2023-06-01T00:00:00Z") from None
    if time is pd.NaT or time.tzinfo is None:
        raise RunLogError(f"{where}: the time has no UTC offset; write e.g. "
                          "2023-06-01T00:00:00Z")
    return LogLine(time.tz_convert("UTC"), event, keys)


# -- what the log says ----------------------------------------------------------------
def state_spans(log: RunHistory) -> pd.DataFrame:
    """Columns start, end, state: the run's timeline, from the first line to the
    ``done`` line (or the last line of a run not done), in running/paused spans.

    A ``pause`` line is written at the decision; the training runs on while it saves,
    for the line's ``pause_s`` wall seconds (times the ``speed`` of a ``simulate`` run),
    and is charged for it: the pause takes effect then.  Time only moves forward: a
    line dated before an earlier one adds no time."""
    speed = _speed(log)
    changes: list[tuple[pd.Timestamp, str]] = []
    state, end = None, log.lines[-1].time
    for line in log.lines:
        if line.event == "done":
            end = line.time
            break
        said = line.get("state")
        new = said if said in (RUNNING, PAUSED) else \
            state if _supervisor(line) else EVENT_STATES.get(line.event, state)
        at = _effective(line, speed)
        if new != state and new is not None:
            changes.append((at, new))
            state = new
    rows: list[dict[str, Any]] = []
    clock = log.lines[0].time  # the latest time reached so far
    for i, (at, st) in enumerate(changes):
        upto = changes[i + 1][0] if i + 1 < len(changes) else max(end, at)
        start, clock = max(clock, at), max(clock, at, upto)
        if clock <= start:
            continue
        if rows and rows[-1]["state"] == st and rows[-1]["end"] == start:
            rows[-1]["end"] = clock
        else:
            rows.append({"start": start, "end": clock, "state": st})
    return pd.DataFrame(rows, columns=["start", "end", "state"])


def _speed(log: RunHistory) -> float:
    """Simulated seconds per wall second: the ``speed`` of a ``simulate`` run, else 1."""
    return next((v for line in log.lines if line.get("simulate") is True
                  and (v := line.number_of("speed")) is not None), 1.0)


def _effective(line: LogLine, speed: float) -> pd.Timestamp:
    """When the line's change took effect: a pause ``pause_s`` wall seconds (x the
    speed) after its decision, every other line at its time."""
    wall = line.number_of("pause_s") if line.event == "pause" else None
    return line.time + pd.Timedelta(seconds=wall * speed) if wall else line.time


def intensity_points(log: RunHistory) -> pd.DataFrame:
    """One row per line that saw an intensity: time, intensity (g/kWh), kind (actual,
    forecast or unknown), provider, stale (bool), age_s."""
    rows = []
    for line in log.lines:
        value = line.number_of("intensity")
        if value is None:
            continue
        rows.append({"time": line.time, "intensity": value, **_provenance(line)})
    return pd.DataFrame(rows, columns=["time", "intensity", "kind", "provider", "stale",
                                       "age_s"])


def _provenance(line: LogLine) -> dict[str, Any]:
    """The line's provenance as kind, provider, stale, age_s; a ``provenance`` object
    (run.md) or a text such as 'electricitymaps actual' / 'archive stale 2.5 h'."""
    prov = line.get("provenance")
    if isinstance(prov, dict):
        kind = str(prov.get("kind") or "unknown")
        provider = prov.get("provider")
        stale = prov.get("stale") is True
        age = prov.get("age_s")
    else:
        words = str(prov or "").lower()
        kind = "forecast" if "forecast" in words else "actual" if "actual" in words \
            else "unknown"
        provider = words.split()[0] if words.split() else None
        stale, age = "stale" in words, None
    stale = stale or line.get("stale") is True
    return {"kind": kind, "provider": provider, "stale": stale,
            "age_s": age if isinstance(age, int | float) else None}


def _step(points: pd.DataFrame) -> list[tuple[pd.Timestamp, float]]:
    """The intensities as a step function: (from, g/kWh), one per distinct time (the
    last line at a time wins)."""
    out: dict[pd.Timestamp, float] = {}
    for time, value in zip(points["time"], points["intensity"], strict=True):
        out[time] = float(value)
    return sorted(out.items())


Piece = tuple[pd.Timestamp, pd.Timestamp, float]  # [from, to) at g/kWh


def intensity_pieces(log: RunHistory) -> tuple[list[Piece], str]:
    """The intensity over the run, as pieces, and what they are (the basis):

    * ``actual``: the log carries ``actual_intensity`` (g/kWh of the span that ends at
      the line, from ``actual_from`` or else the previous line's time, running or not):
      the intensities the energy was charged at, paused spans included;
    * ``charged+seen``: where the training ran, the intensity each span was charged at,
      from the log's own increments (``1000 x d emissions_kg / d energy_kwh`` between two
      lines; none where emissions did not grow: unknown); elsewhere (paused) the
      ``intensity`` the lines saw, held until the next;
    * ``seen``: the ``intensity`` each line saw, held until the next (a log without
      energy)."""
    actual = _logged_actuals(log)
    if actual:
        return actual, "actual"
    steps = _step(intensity_points(log))
    end = max(log.lines[-1].time, *(t for t, _ in steps)) if steps else log.lines[-1].time
    edges = [t for t, _ in steps[1:]] + [end]
    seen = [(t, upto, v) for (t, v), upto in zip(steps, edges, strict=True) if upto > t]
    charged = _charged(log)
    if not charged:
        return seen, "seen"
    # a span charged at no known intensity (NaN) is covered, so the seen values do not
    # fill it, and left out: integral() counts it as unknown hours
    rest = [part for piece in seen for part in _outside(piece, charged)]
    known = [piece for piece in charged if not math.isnan(piece[2])]
    return sorted(known + rest), "charged+seen"


def _logged_actuals(log: RunHistory) -> list[Piece]:
    pieces: list[Piece] = []
    before: pd.Timestamp | None = None
    for line in log.lines:
        value = line.number_of(ACTUAL_KEY)
        frm = line.get("actual_from")
        start = _time(frm) if isinstance(frm, str) else before
        if value is not None and start is not None and line.time > start:
            pieces.append((start, line.time, value))
        if before is None or line.time > before:
            before = line.time
    return pieces


def _charged(log: RunHistory) -> list[Piece]:
    """The intensity each span between two lines with energy was charged at, over the
    parts of it in which the training ran (energy is charged only then).  A span whose
    energy grew and emissions did not was charged at no known intensity (the controller
    counts such energy and charges nothing): its pieces are NaN, not 0 g/kWh."""
    spans = state_spans(log)
    running = [(a, b, 0.0) for a, b, st in spans.itertuples(index=False) if st == RUNNING]
    speed = _speed(log)
    pieces: list[Piece] = []
    last: tuple[pd.Timestamp, float, float] | None = None
    for line in log.lines:
        kwh, kg = line.number_of("energy_kwh"), line.number_of("emissions_kg")
        if kwh is None or kg is None:
            continue
        at = _effective(line, speed)  # a pause line's figures include the save
        if last is not None and at > last[0] and kwh - last[1] > 1e-9:
            grew = kg - last[2]
            value = 1000 * grew / (kwh - last[1]) if grew > 1e-12 else math.nan
            pieces += [(a, b, value) for a, b, _ in _inside((last[0], at, 0.0), running)]
        if last is None or at >= last[0]:
            last = (at, kwh, kg)
    return pieces


def _inside(piece: Piece, covers: list[Piece]) -> list[Piece]:
    """The parts of ``piece`` that pieces of ``covers`` (sorted, disjoint) cover."""
    lo, hi, value = piece
    return [(max(lo, a), min(hi, b), value) for a, b, _ in covers if min(hi, b) > max(lo, a)]


def _outside(piece: Piece, covers: list[Piece]) -> list[Piece]:
    """The parts of ``piece`` that no piece of ``covers`` (sorted, disjoint) covers."""
    lo, hi, value = piece
    out: list[Piece] = []
    for a, b, _ in covers:
        if b <= lo or a >= hi:
            continue
        if a > lo:
            out.append((lo, a, value))
        lo = max(lo, b)
    if hi > lo:
        out.append((lo, hi, value))
    return out


def _time(text: str) -> pd.Timestamp | None:
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    return None if t is pd.NaT or t.tzinfo is None else t.tz_convert("UTC")


def integral(pieces: list[Piece], start: pd.Timestamp,
             end: pd.Timestamp) -> tuple[float, float]:
    """(g/kWh x h over [start, end), hours of it no piece covers)."""
    total, covered = 0.0, 0.0
    for lo_, hi_, value in pieces:
        lo, hi = max(lo_, start), min(hi_, end)
        if hi > lo:
            h = (hi - lo).total_seconds() / 3600
            total += value * h
            covered += h
    return total, max((end - start).total_seconds() / 3600 - covered, 0.0)


@dataclass(frozen=True)
class RunSummary:
    """The run's figures (units in the names; None where the log does not tell).

    ``run_kg`` and ``run_now_kg`` are on the same intensities (``basis``: ``actual`` or
    ``seen``, :func:`intensity_pieces`) at the run's mean draw; ``emissions_kg`` is the
    log's own figure."""

    start: pd.Timestamp
    last: pd.Timestamp
    done: pd.Timestamp | None
    running_h: float
    paused_h: float
    pauses: int
    resumes: int
    restarts: int  # of the training (after a crash)
    supervisor_restarts: int
    fallbacks: int
    decisions: int
    energy_kwh: float | None
    emissions_kg: float | None
    mean_kw: float | None
    basis: str
    run_kg: float | None
    run_unknown_h: float
    run_now_done: pd.Timestamp
    run_now_kg: float | None
    run_now_unknown_h: float
    redone_h: float | None
    policy: str | None

    @property
    def delay_h(self) -> float | None:
        if self.done is None:
            return None
        return (self.done - self.run_now_done).total_seconds() / 3600

    @property
    def saving_pct(self) -> float | None:
        if self.run_kg is None or not self.run_now_kg:
            return None
        return 100 * (self.run_now_kg - self.run_kg) / self.run_now_kg


def summarise(log: RunHistory) -> RunSummary:
    spans = state_spans(log)
    hours = {s: float(((spans["end"] - spans["start"])[spans["state"] == s])
                      .dt.total_seconds().sum() / 3600) for s in (RUNNING, PAUSED)}
    count = {e: sum(1 for line in log.lines if line.event == e and not _supervisor(line))
             for e in ("pause", "resume", "restart", "fallback", "decision")}
    count["supervisor"] = sum(1 for line in log.lines if _supervisor(line))
    done = next((line.time for line in log.lines if line.event == "done"), None)
    energy = _last_number(log.lines, "energy_kwh")
    start = log.lines[0].time
    running = hours[RUNNING]
    mean_kw = energy / running if energy is not None and running > 0 else None
    pieces, basis = intensity_pieces(log)
    ran = [integral(pieces, a, b) for a, b, st in spans.itertuples(index=False)
           if st == RUNNING]
    run_now_done = start + pd.Timedelta(hours=running)
    now_g_h, now_unknown_h = integral(pieces, start, run_now_done)
    redone = [v for line in log.lines if (v := line.number_of("redone_s")) is not None]
    policy = next((str(p) for line in log.lines if (p := line.get("policy"))), None)
    return RunSummary(start=start, last=log.lines[-1].time, done=done, running_h=running,
                      paused_h=hours[PAUSED], pauses=count["pause"], resumes=count["resume"],
                      restarts=count["restart"], supervisor_restarts=count["supervisor"],
                      fallbacks=count["fallback"], decisions=count["decision"],
                      energy_kwh=energy, emissions_kg=_last_number(log.lines, "emissions_kg"),
                      mean_kw=mean_kw, basis=basis,
                      run_kg=None if mean_kw is None else
                      mean_kw * sum(g for g, _ in ran) / 1000,
                      run_unknown_h=sum(u for _, u in ran), run_now_done=run_now_done,
                      run_now_kg=None if mean_kw is None else mean_kw * now_g_h / 1000,
                      run_now_unknown_h=now_unknown_h,
                      redone_h=sum(redone) / 3600 if redone else None, policy=policy)


def _last_number(lines: Iterable[LogLine], key: str) -> float | None:
    found = None
    for line in lines:
        value = line.number_of(key)
        if value is not None:
            found = value
    return found


# -- the page -------------------------------------------------------------------------
def run_report(source: str | Path | RunHistory) -> Report:
    """The HTML report of a run log (a path or a read :class:`RunHistory`)."""
    log = source if isinstance(source, RunHistory) else read_run_log(source)
    s = summarise(log)
    report = Report("GreenEpoch run report")
    state = f"done at {_iso(s.done)}" if s.done is not None else \
        f"not done: the log ends at {_iso(s.last)}"
    report.note(f"run log {log.path.name}: {len(log.lines)} lines from {_iso(s.start)}, "
                f"{state}" + (f"; policy {s.policy}" if s.policy else ""))
    for note in log.notes:
        report.note(note)
    report.heading("Emissions and delay")
    report.table(_summary_table(s), "emissions and delay")
    report.note(_summary_note(s))
    report.heading("Pauses and interruptions")
    report.table(_interruptions_table(s), "pauses and interruptions",
                 counts=("pauses", "resumes", "restarts", "supervisor_restarts", "fallbacks",
                         "decisions"))
    report.heading("Timeline")
    report.figure(timeline(log, s), "running and paused against the intensity each decision "
                  "saw (held until the next line; green bars: the intensity each span was "
                  "charged at); filled dots actual, open triangles "
                  "forecast, red crosses stale values, orange lines fallback events; the "
                  "lowest lane is running straight through from the start (run now)")
    events = [line for line in log.lines if line.event != "decision"]
    if events:
        report.heading("Events")
        report.table(_events_table(events[:EVENT_ROWS]), "events", counts=("segment",))
        if len(events) > EVENT_ROWS:
            report.note(f"the first {EVENT_ROWS} of {len(events)} events")
    return report


def _iso(ts: pd.Timestamp | None) -> str:
    return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary_table(s: RunSummary) -> pd.DataFrame:
    row = {"emissions_kg": s.emissions_kg, "compared_on": s.basis, "run_kg": s.run_kg,
           "run_now_kg": s.run_now_kg, "saving_%": s.saving_pct, "energy_kwh": s.energy_kwh,
           "mean_kw": s.mean_kw, "done": _iso(s.done) if s.done is not None else None,
           "run_now_done": _iso(s.run_now_done), "delay_h": s.delay_h}
    return pd.DataFrame([row])


def _interruptions_table(s: RunSummary) -> pd.DataFrame:
    row = {"running_h": s.running_h, "paused_h": s.paused_h, "pauses": s.pauses,
           "resumes": s.resumes, "restarts": s.restarts,
           "supervisor_restarts": s.supervisor_restarts, "fallbacks": s.fallbacks,
           "decisions": s.decisions, "redone_h": s.redone_h}
    return pd.DataFrame([row])


def _summary_note(s: RunSummary) -> str:
    on = {"actual": "the actual intensity of each span (the log's actual_intensity)",
          "charged+seen": "the intensity the log charged each running span at (from its "
          "own emissions and energy) and, where it was paused, the intensity each line "
          "saw, held until the next line (the log has no actual_intensity)",
          "seen": "the intensity each line saw, held until the next line"}[s.basis]
    parts = ["emissions_kg and energy_kwh are the log's own; run_kg (this run) and "
             "run_now_kg (running straight through from the start for the same "
             f"{s.running_h:.2f} h of running time) are both at the run's mean draw and on "
             f"{on}; saving_% compares those two; delay_h is done minus run_now_done"]
    unknown = [f"{h:.2f} h of {what}" for h, what in ((s.run_unknown_h, "this run"),
                                                     (s.run_now_unknown_h, "run now"))
               if h > 1e-9]
    if unknown:
        parts.append(f"{' and '.join(unknown)} have no known intensity and are not charged")
    if s.energy_kwh is None:
        parts.append("the log holds no energy_kwh: run_kg and run_now_kg are unknown")
    if s.redone_h is None:
        parts.append("work redone after resumes is not in the log (no redone_s)")
    return "; ".join(parts) + "."


def _events_table(lines: list[LogLine]) -> pd.DataFrame:
    rows = []
    for line in lines:
        prov = _provenance(line) if line.number_of("intensity") is not None else None
        rows.append({"time": _iso(line.time), "event": _event(line),
                     "state": line.get("state"), "intensity": line.number_of("intensity"),
                     "seen": None if prov is None else
                     f"{prov['provider'] or '?'} {prov['kind']}"
                     + (" stale" if prov["stale"] else ""),
                     "segment": line.number_of("segment"),
                     "reason": line.get("reason")})
    return pd.DataFrame(rows)


def _event(line: LogLine) -> str:
    return "restart (supervisor)" if _supervisor(line) else line.event


def _supervisor(line: LogLine) -> bool:
    """A supervisor started again on the run directory (not the training restarted)."""
    return line.event == "restart" and line.get("supervisor") is True


def timeline(log: RunHistory, s: RunSummary) -> bytes:
    """The figure: intensity (step) with provenance marks above, state lanes below."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from greenepoch.planner.report.figures import include_zero, to_png

    def num(ts: Any) -> Any:
        return mdates.date2num(pd.DatetimeIndex(pd.Series(ts)).tz_convert(None))

    points = intensity_points(log)
    end = s.done or s.last
    fig, (top, low) = plt.subplots(2, 1, figsize=(11, 5.4), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1.2]},
                                   constrained_layout=True)
    charged = [piece for piece in _logged_actuals(log) or _charged(log)
               if not math.isnan(piece[2])]
    for i, (a, b, value) in enumerate(charged):
        top.plot(num([a, b]), [value, value], color="#2e8b57", linewidth=2.6, alpha=0.8,
                 zorder=4, label=None if i else "charged (actual)")
    steps = _step(points)
    if steps:
        xs = [t for t, _ in steps] + [max(end, steps[-1][0])]
        ys = [v for _, v in steps] + [steps[-1][1]]
        top.step(num(xs), ys, where="post", color="#1d2733", linewidth=1.2,
                 label="intensity seen (held to the next line)")
    marks = [("actual", "o", "#1f3b73", "full"), ("forecast", "^", "#8e44ad", "none"),
             ("unknown", "s", "#7b8794", "none")]
    for kind, marker, colour, fill in marks:
        part = points[points["kind"] == kind]
        if len(part):
            top.plot(num(part["time"]), part["intensity"], linestyle="none", marker=marker,
                     color=colour, fillstyle=fill, markersize=5 if len(points) < 150 else 2,
                     label=kind)
    stale = points[points["stale"].astype(bool)] if len(points) else points
    if len(stale):
        top.plot(num(stale["time"]), stale["intensity"], linestyle="none", marker="x",
                 color="#c0392b", markersize=8, mew=2, label="stale")
    fallbacks = [line.time for line in log.lines if line.event == "fallback"]
    for i, at in enumerate(fallbacks):
        top.axvline(num([at])[0], color="#d35400", linestyle="--", linewidth=1.2,
                    label=None if i else "fallback")
    include_zero(top, points["intensity"] if len(points) else [0.0])
    top.set_ylabel("gCO2eq/kWh")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    top.grid(alpha=0.3)
    top.set_title("run timeline")
    spans = state_spans(log)
    colours = {RUNNING: "#2e8b57", PAUSED: "#cbd2d9"}
    for state, lane in ((RUNNING, 1), (PAUSED, 1)):
        part = spans[spans["state"] == state]
        bars = [(a, b - a) for a, b in zip(num(part["start"]), num(part["end"]), strict=True)]
        low.broken_barh(bars, (lane - 0.35, 0.7), color=colours[state], label=state)
    now = num([s.start, s.run_now_done])
    low.broken_barh([(now[0], now[1] - now[0])], (-0.35, 0.7), color="#1f3b73",
                    label="run now")
    low.set_yticks([0, 1], ["run now", "this run"])
    low.set_ylim(-0.6, 1.6)
    low.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    low.xaxis_date()
    low.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    return to_png(fig)
