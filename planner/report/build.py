"""Reports of a plan (JSON, docs/plan-schema.md) or a what-if results file: one
static HTML page with the figures embedded as base64 PNG, viewable offline.

The page's script sets ``data-figures="N/M"`` and ``data-figures-loaded`` on
``<body>`` once every ``<img>`` has decoded (``tests/planner/report/test_report_browser.py``
checks it in headless Chromium).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import DataError, GreenEpochError
from greenepoch.data.intensity.source import (
    CachedSource,
    ClimatologySource,
    IntensitySource,
    source_for,
)
from greenepoch.planner.plan_doc import SIGNAL_TEXT, LiveInfo, Plan, PlanError, iso
from greenepoch.planner.report.cells import (
    HTML_DECIMALS,
    ROW_COUNTS,
    cell,
    numeric_columns,
    text_table,
)

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:
1100px;color:#1d2733;background:#fff;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:3px solid #2e8b57;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#1f3b73}
p.note{color:#52606d;font-size:.9rem}
p.warn{color:#8a1c1c;font-weight:600;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #d9e2ec;text-align:right}
th{background:#f0f4f8}
td.text,th.text{text-align:left}
figure{margin:1rem 0}
div.scroll{overflow-x:auto}
img{max-width:100%;height:auto;border:1px solid #e4e7eb}
figcaption{color:#52606d;font-size:.85rem}
"""

DataArg = str | Path | IntensitySource | None  # a source, a data folder, or none (synthetic)

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-figures', ok + '/' + imgs.length);
  document.body.setAttribute('data-figures-loaded', ok === imgs.length ? 'true' : 'false');
});
"""


@dataclass
class Report:
    """A report being built: sections of HTML, and the same tables as text."""

    title: str
    parts: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    figures: int = 0

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')
        self.text.append(text)

    def warning(self, text: str) -> None:
        """A sentence the reader must not miss (stale or synthetic inputs)."""
        self.parts.append(f'<p class="warn">{html.escape(text)}</p>')
        self.text.append(text)

    def figure(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        alt = html.escape(caption, quote=True)
        self.parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                          f"<figcaption>{alt}</figcaption></figure>")
        self.figures += 1

    def table(self, frame: pd.DataFrame, title: str,
              counts: Iterable[str] = ROW_COUNTS) -> None:
        """The table in HTML and as text; ``counts``: its columns of whole numbers
        (planner.report.cells)."""
        self.parts.append(_html_table(frame, counts))
        self.text.append(f"{title}\n\n{text_table(frame.reset_index(drop=True), counts)}")

    def write(self, path: str | Path) -> Path:
        """Write the HTML page to ``path`` atomically (planner.atomic): a reader sees
        the old report or the new one, never half a page."""
        from greenepoch.data.atomic import write_atomic

        return write_atomic(path, self.html())

    def html(self) -> str:
        body = "\n".join(self.parts)
        title = html.escape(self.title)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{title}</title><style>{STYLE}</style></head>\n"
                f'<body data-figures="0/{self.figures}" data-figures-loaded="pending">\n'
                f"<h1>{title}</h1>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n")


def _html_table(frame: pd.DataFrame, counts: Iterable[str] = ROW_COUNTS) -> str:
    numeric = numeric_columns(frame)
    head = "".join(f'<th class="{"num" if n else "text"}">{html.escape(str(c))}</th>'
                   for c, n in zip(frame.columns, numeric, strict=True))
    counts = tuple(counts)
    rows = []
    for row in frame.itertuples(index=False):
        tds = "".join(f'<td class="{"num" if n else "text"}">'
                      f"{html.escape(cell(v, str(c), counts=counts, decimals=HTML_DECIMALS))}"
                      "</td>" for v, c, n in zip(row, frame.columns, numeric, strict=True))
        rows.append(f"<tr>{tds}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def load_backdrop(zones: list[str], start: pd.Timestamp, end: pd.Timestamp, *,
                  data: str | Path | IntensitySource | None, signal: str,
                  source: str = "real") -> tuple[pd.DataFrame, str]:
    """Hourly intensities over ``[start, end)``: from ``data`` (a source or a data
    folder) when it is given and covers them (and the plan was made on real data), else
    the synthetic default.  Returns the frame and the label of where it came from."""
    if data is not None and source == "real":
        try:
            got = source_for(data).load(zones, start, end, signal=signal, slot="1h")
            return got.values, "real"
        except GreenEpochError:
            pass
    synthetic = ClimatologySource().load(zones, start, end, signal=signal, slot="1h")
    return synthetic.values, "synthetic"


def _cached(data: str | Path | IntensitySource | None
            ) -> str | Path | IntensitySource | None:
    """One cached source for every figure of a report (the backdrop, the heatmap year
    and the forecast read the same files); ``data`` as is when it names no source."""
    if data is None:
        return None
    try:
        return CachedSource(source_for(data))
    except GreenEpochError:
        return data  # load_backdrop falls back on the synthetic default, as before


def _heatmap_section(report: Report, zones: list[str], year: int, *, data: DataArg,
                     signal: str, source: str) -> None:
    from greenepoch.planner.report.figures import intensity_heatmaps

    start = pd.Timestamp(year=year, month=1, day=1, tz="UTC")
    values, origin = load_backdrop(zones, start, start + pd.DateOffset(years=1), data=data,
                                   signal=signal, source=source)
    report.heading("Carbon intensity by hour of day and month")
    report.figure(intensity_heatmaps(values),
                  f"mean {signal} intensity, {year}, {origin} data, hour of day in UTC")


def planned_forecast(zones: list[str], start: pd.Timestamp, end: pd.Timestamp, *,
                     model: str, slot: str, data: DataArg, signal: str,
                     seed: int = 0) -> pd.DataFrame:
    """The forecast a plan starting at ``start`` was made on, over ``[start, end)``.

    Issued again through :func:`planner.pipeline.load_intensities` (same model, issue
    time, history, fit cut-off and slot; the fitted model comes from the forecast
    cache when the plan's run left it there), for a window request over the zones: a
    forecast's value at a slot does not depend on how far the horizon reaches.
    """
    from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
    from greenepoch.planner.pipeline import load_intensities

    window = PlanRequest(
        start=start,
        jobs=(Job(name="window", gpus=1, gpu_hours=1.0, release=start, deadline=end,
                  zones=(zones[0],), home_zone=zones[0]),),
        zones=tuple(Zone(id=z, capacity_gpus=1) for z in zones),
        policy=Policy(slot=slot, forecast=model),
    )
    got = load_intensities(window, data=data, model=model, signal=signal, seed=seed)
    return got.judged.values


def _gantt_section(report: Report, segments: pd.DataFrame, zones: list[str], *,
                   data: DataArg, signal: str, source: str, title: str,
                   deadlines: dict[str, str] | None = None,
                   forecast_model: str | None = None, slot: str = "1h",
                   start: str | None = None, seed: int = 0) -> None:
    """The Gantt chart over the actual intensities, with deadline markers and, for a plan
    made on a forecast (``forecast_model``), the forecast it was planned on."""
    from greenepoch.planner.report.figures import gantt

    if segments.empty:
        return
    marks = {job: pd.Timestamp(at) for job, at in (deadlines or {}).items()}
    first = pd.Timestamp(start if start is not None else segments["start"].min()).floor("1D")
    last = max([pd.Timestamp(segments["end"].max()), *marks.values()]).ceil("1h") \
        + pd.Timedelta("6h")
    backdrop, origin = load_backdrop(zones, first, last, data=data, signal=signal,
                                     source=source)
    forecast = None
    note = ""
    if forecast_model is not None and start is not None:
        issued = pd.Timestamp(start)
        try:
            # a plan made on synthetic data was forecast from the climatology, whatever
            # $GREENEPOCH_DATA says now
            on = data if source == "real" else ClimatologySource(seed)
            forecast = planned_forecast(zones, issued, last, model=forecast_model, slot=slot,
                                        data=on, signal=signal, seed=seed)
            note = (f"; lanes marked 'forecast planned on': the {forecast_model} forecast "
                    f"issued at {issued.strftime('%Y-%m-%d %H:%M')} UTC")
        except GreenEpochError as exc:
            note = f"; the {forecast_model} forecast could not be issued again ({exc})"
    report.heading("Plan across zones")
    report.figure(gantt(segments, backdrop, title, deadlines=marks or None,
                        forecast=forecast),
                  f"segments over the {origin} {signal} intensity of each zone"
                  + ("; red ticks: deadlines" if marks else "") + note)


def plan_report(plan: Plan | dict[str, Any], *, data: DataArg = None) -> Report:
    """Report of one plan (a :class:`Plan`, or its JSON document); ``data``: a source or
    a data folder.  A plan without what the report reads (start, zones, intensity,
    solver, each job's summary and baselines) is one PlanError naming it."""
    plan = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    plan.require_full()
    assert plan.start is not None and plan.zones is not None  # require_full checked
    assert plan.intensity is not None and plan.solver is not None
    info, solver = plan.intensity, plan.solver
    live = info.live
    data = None if live is not None else _cached(data)  # a live plan's report reads nothing
    zones = list(plan.zones)
    signal = str(info.signal)
    status = solver.status.value if solver.status is not None else None
    report = Report("GreenEpoch plan report")
    report.note(f"plan start {iso(plan.start)}, zones {', '.join(zones)}; planned on "
                f"{info.source} {info.signal_text} intensities ({info.mode}"
                + (f", {info.model}" if info.model else "")
                + (", live" if live is not None else "") + "); solver "
                f"{solver.name} {status}")
    if live is not None:
        _live_header(report, live)
    rows = []
    for i, job in enumerate(plan.jobs):
        s, b = job.summary, job.baselines
        assert s is not None and b is not None  # require_full checked
        missing = [k for k in ("run_now_home", "run_now_best_zone") if k not in b]
        if missing:
            raise PlanError(f"jobs[{i}].baselines: missing '{missing[0]}'")
        home, best = b["run_now_home"], b["run_now_best_zone"]
        rows.append({
            "job": job.name, "plan_kg": s.emissions_kg,
            "realised_kg": s.realised_emissions_kg,
            "run_now_home_kg": home.emissions_kg,
            "best_zone": best.zone, "best_zone_kg": best.emissions_kg,
            "saving_%": job.savings_pct, "finish": _iso(s.finish),
            "run_now_finish": _iso(home.finish),
            "interruptions": s.interruptions, "migrations": s.migrations,
            "energy_kwh": s.energy_kwh, "cost_usd": s.cost_usd,
        })
    table = pd.DataFrame(rows)
    if table["realised_kg"].isna().all():
        table = table.drop(columns="realised_kg")
    report.heading("Savings")
    report.table(table, "savings")
    segments = plan.segments()
    deadlines = {job.name: iso(job.deadline) for job in plan.jobs if job.deadline is not None}
    if live is not None:
        _live_gantt_section(report, segments, live, info.signal_text, deadlines)
    else:
        _gantt_section(report, segments, zones, data=data, signal=signal,
                       source=str(info.source), title="plan", deadlines=deadlines,
                       forecast_model=info.model if info.forecast and info.model else None,
                       slot=plan.slot or "1h", start=iso(plan.start))
    report.heading("Segments")
    report.table(segments, "segments")
    if live is None:
        _heatmap_section(report, zones, plan.start.year, data=data, signal=signal,
                         source=str(info.source))
    return report


def _live_header(report: Report, live: LiveInfo) -> None:
    """Where a live plan's intensities came from, as its JSON records it: each read
    (provider, fetch and issue times, staleness), the hours of each origin per zone,
    and every stale or synthetic input as a warning."""
    report.heading("Live inputs")
    report.note(live.line())
    for line in live.warning_lines():
        report.warning(line)
    reads = pd.DataFrame([{
        "zone": r.zone, "kind": r.kind, "origin": r.origin, "provider": r.provider,
        "signal": SIGNAL_TEXT.get(str(r.signal), r.signal),
        "issued": _iso(r.issued), "fetched": _iso(r.fetched),
        "stale_h": None if r.stale_s is None else round(r.stale_s / 3600, 2),
        "first": _iso(r.first), "last": _iso(r.last)} for r in live.providers or ()])
    if not reads.empty:
        report.table(reads, "live reads")
        report.note("one row per zone and kind read: origin live (answered now), archive "
                    "(STALE: no provider answered; stale_h is its age) or default (the "
                    "embedded synthetic default, not measured); issued: the provider's "
                    "forecast issue time; fetched: when it was fetched (UTC)")
    hours = pd.DataFrame([{"zone": zone, **{f"{name}_h": h.hours for name, h in
                                            origins.items()}}
                          for zone, origins in (live.zones or {}).items()])
    if not hours.empty:
        report.table(hours, "hours by origin")
        fitted = ("none here: a marginal forecast is never extended" if live.history is None
                  else f"fitted on {live.history} history")
        report.note("hours of the plan per origin: provider (its live forecast), seam "
                    f"(blended into the own model), model (the own model, {fitted}), stale "
                    "(an archived provider forecast), synthetic (the embedded default)")


def _live_gantt_section(report: Report, segments: pd.DataFrame, live: LiveInfo,
                        signal: str, deadlines: dict[str, str]) -> None:
    """The Gantt chart over the forecast the live plan was made on (its JSON's
    ``intensity.live.series``): nothing had happened yet, and a live forecast cannot be
    issued again, so the report shows that one or none."""
    from greenepoch.planner.report.figures import gantt

    if segments.empty:
        return
    marks = {job: pd.Timestamp(at) for job, at in deadlines.items()}
    backdrop = None if live.series is None else live.series.frame("p50")
    report.heading("Plan across zones")
    if backdrop is None:
        caption = ("segments only, without an intensity backdrop: this live plan's JSON "
                   "does not hold the forecast per slot (intensity.live.series, recorded "
                   "since plans of this version), and a live forecast cannot be issued "
                   "again later")
    else:
        caption = (f"segments over the live forecast's P50 ({signal}) the plan was made "
                   "on, as its JSON holds it (not what happened: nothing had yet)")
    report.figure(gantt(segments, backdrop, "plan", deadlines=marks or None,
                        backdrop_is="the live forecast's P50 the plan was made on"),
                  caption + ("; red ticks: deadlines" if marks else ""))


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else iso(ts)


def result_report(header: dict[str, Any], rows: dict[str, dict[str, Any]], *,
                  data: DataArg = None) -> Report:
    """Report of a what-if results file: the views, their figures, the best plan;
    ``data``: a source or a data folder (default: the one the sweep ran on)."""
    from greenepoch.planner.report import figures
    from greenepoch.planner.whatif.results import results_frame
    from greenepoch.planner.whatif.views import (
        PAIRED,
        PARETO_OBJECTIVES,
        VIEW_COUNTS,
        best_zone_season,
        outcomes,
        paired_note,
        pareto_front,
        planned_on,
        slack_returns,
        threshold_curve,
    )

    frame = results_frame(rows)
    if frame.empty:
        raise GreenEpochError("the results file holds no rows yet; run the sweep first")
    signal = header.get("signal", "direct")
    data = _cached(data or header.get("data"))
    source = "real" if header.get("data") else "synthetic"
    ok = frame[frame["status"] == "ok"]
    report = Report("GreenEpoch what-if report")
    report.note(f"{len(frame)} scenarios ({len(ok)} planned, {len(frame) - len(ok)} without "
                f"a plan) on {source} {signal} intensities; planned on {planned_on(frame)}")
    missing = outcomes(frame)
    if ok.empty:
        why = ", ".join(f"{r.status} {r.rows}" for r in missing.itertuples())
        raise GreenEpochError(f"no scenario of the results file has a plan ({why}); "
                              "nothing to report")
    if not missing.empty:
        _outcomes_section(report, missing)

    # the best of each forecast mode: a perfect-foresight plan is no choice for one
    # made on a forecast, so each mode shows its own
    modes = list(dict.fromkeys(ok["forecast"])) if "forecast" in ok else [None]
    bests = [(ok if mode is None else ok[ok["forecast"] == mode])
             .sort_values(["emissions_kg", "index"]).iloc[0] for mode in modes]
    best = bests[0]
    report.heading("Best scenario" + (" of each forecast mode" if len(bests) > 1 else ""))
    cols = ["zones", "season", "start", "slack_h", "threshold", "overhead_min", "forecast",
            "emissions_kg", "run_now_kg", "savings_pct", "delay_mean_h", "energy_kwh",
            "cost_usd"]
    report.table(pd.DataFrame([b[cols].to_dict() for b in bests]), "best scenario")
    for pick in bests:
        found = rows[str(pick.name)]
        segs = pd.DataFrame(found["segments"] or [],
                            columns=["job", "zone", "start", "end", "gpus"])
        planned = str(pick["forecast"]) if pick.get("forecast") not in (None, "oracle") \
            else None
        _gantt_section(report, segs, str(pick["zones"]).split("+"), data=data, signal=signal,
                       source=source,
                       title=f"best scenario: {pick['zones']}, start {pick['start']}, "
                       + (f"planned on the {planned} forecast" if planned
                          else "planned on perfect foresight (oracle)"),
                       deadlines=found.get("deadlines"), forecast_model=planned,
                       slot=found.get("slot") or "1h", start=str(pick["start"]),
                       seed=int(header.get("seed") or 0))

    ranked = best_zone_season(frame)
    if not ranked.empty:
        report.heading("Best zone and season")
        report.figure(figures.ranked_bars(ranked), "mean emissions per zone set and season "
                      "(means over the same scenarios in every bar of a forecast mode; "
                      "modes never averaged together)")
        report.table(ranked, "best zone and season", VIEW_COUNTS)
        report.note(paired_note(ranked, PAIRED["best zone and season"]))
    curve = threshold_curve(frame)
    if not curve.empty:
        report.heading("Carbon threshold trade-off")
        report.figure(figures.tradeoff(curve, "delay_mean_h", "emissions_kg", "threshold",
                                       "completion delay, mean (h)", "emissions (kg CO2eq)",
                                       "threshold: emissions vs delay", "kg"),
                      "each point a threshold in gCO2eq/kWh (none: no threshold), one line "
                      "per forecast mode; axes start at zero")
        report.table(curve, "carbon threshold trade-off", VIEW_COUNTS)
        report.note(paired_note(curve, PAIRED["carbon threshold trade-off"]))
    slack = slack_returns(frame)
    if not slack.empty:
        report.heading("Diminishing returns of slack")
        report.figure(figures.tradeoff(slack, "slack_h", "savings_pct", "slack_h",
                                       "deadline slack (h)", "savings vs run-now (%)",
                                       "savings by slack"),
                      "mean savings per deadline slack, one line per forecast mode; axes "
                      "start at zero")
        report.table(slack, "diminishing returns of slack", VIEW_COUNTS)
        report.note(paired_note(slack, PAIRED["diminishing returns of slack"]))
    front = pareto_front(frame)
    if not front.empty:
        used = [c for c in PARETO_OBJECTIVES if c in front]
        report.heading("Carbon-time-cost Pareto front")
        report.figure(figures.pareto(ok, front, used),
                      f"{len(front)} distinct points ({int(front['ties'].sum())} of {len(ok)} "
                      f"scenarios, exact ties collapsed) are not beaten on "
                      f"{', '.join(used)} within their forecast mode")
        report.table(front.reset_index(drop=True), "Pareto front", VIEW_COUNTS)

    zones = sorted({z for label in ok["zones"] for z in str(label).split("+")})
    year = pd.Timestamp(best["start"]).year
    _heatmap_section(report, zones, year, data=data, signal=signal, source=source)
    report.heading("All scenarios")
    table_cols = [c for c in ["zones", "season", "start", "slack_h", "threshold",
                              "overhead_min", "forecast", "status", "emissions_kg",
                              "savings_pct", "delay_mean_h", "delay_p95_h", "interruptions",
                              "energy_kwh", "cost_usd"] if c in frame]
    report.parts.append(_html_table(frame[table_cols].reset_index(drop=True)))
    return report


def _outcomes_section(report: Report, missing: pd.DataFrame) -> None:
    """The rows without a plan by why (planner.whatif.views.outcomes), as the terminal
    lists them under the views: only ``infeasible`` says the request cannot be met."""
    report.heading("Scenarios without a plan")
    report.table(missing, "scenarios without a plan", counts=("rows",))
    report.note(f"{int(missing['rows'].sum())} scenario(s) without a plan, by why; "
                "first: the first such scenario (zone set and start) and its message. "
                "Only infeasible proves the request cannot be met: a no_solution row may "
                "plan with a longer policy.time_limit, a data_missing row with data "
                "covering its window")


def build_report(path: str | Path, *, data: DataArg = None) -> Report:
    """Report of a plan JSON or a what-if results file (told apart by content)."""
    from greenepoch.planner.whatif.results import is_result_file, read_results

    file = Path(path)
    if not file.is_file():
        raise GreenEpochError(f"{file}: no such file; give a plan JSON (as 'greenepoch plan' "
                              "writes) or a what-if results file (as 'greenepoch whatif' "
                              "writes)")
    if is_result_file(file):
        header, rows = read_results(file)
        try:
            return result_report(header, rows, data=data)
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"a row misses {exc}" if isinstance(exc, KeyError) else \
                f"a value has the wrong type: {exc}"
            raise GreenEpochError(f"{file}: not a readable what-if results file ({what}); "
                                  "write results with 'greenepoch whatif'") \
                from None
    plan = Plan.from_json(file)
    try:
        return plan_report(plan, data=data)
    except DataError:
        raise
    except GreenEpochError as exc:
        raise GreenEpochError(f"{file}: not a plan document ({exc}); give a plan JSON or a "
                              "what-if results file") from None
