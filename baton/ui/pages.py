"""The UI's pages, rendered on the server as HTML (every figure is inline SVG from ``charts``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from baton.cost import Cost
from baton.ui.charts import COLOURS, distribution_svg, gantt_svg, graph_svg, item_latencies, percentile
from baton.ui.model import RunView
from baton.ui.reader import RunRow
from pipeline.monitor_models import MonitorRunStatus

ENGINES = ("orchestrator", "stepfunctions", "choreography")
STATUSES = ("running", "succeeded", "failed-items", "failed")


def page(title: str, body: str, refresh: bool = False) -> str:
    """A whole page around ``body``; ``refresh`` reloads it every 2 s (a run in progress)."""
    nav = "".join(f'<a href="{href}">{name}</a>' for href, name in
                  (("/", "Runs"), ("/compare", "Compare"), ("/monitor", "Monitor")))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · baton'
            f'</title><link rel="stylesheet" href="/assets/style.css"></head>'
            f'<body data-refresh="{"1" if refresh else ""}"><header><strong>baton</strong>{nav}</header>'
            f'<main><h1>{escape(title)}</h1>{body}</main><script src="/assets/app.js"></script>'
            f'</body></html>')


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.6f}"


def _select(name: str, options: Sequence[str], chosen: str | None) -> str:
    choices = "".join(f'<option value="{o}"{" selected" if o == chosen else ""}>{o}</option>'
                      for o in options)
    return f'<select name="{name}" id="{name}"><option value="">any {name}</option>{choices}</select>'


def runs_page(rows: list[RunRow], engine: str | None, status: str | None) -> str:
    """Every run of every engine, newest first, filtered by engine and status."""
    shown = [r for r in rows if (not engine or r.engine == engine) and (not status or r.status == status)]
    form = (f'<form class="filters" method="get" action="/">{_select("engine", ENGINES, engine)}'
            f'{_select("status", STATUSES, status)}<button type="submit">Filter</button></form>')
    lines = "".join(
        f'<tr class="run {escape(r.status)}" data-run="{escape(r.run_id)}" data-engine="{r.engine}">'
        f'<td><input type="checkbox" name="pick" value="{escape(r.run_id)}" form="compare"></td>'
        f'<td><a href="/runs/{quote(r.run_id)}">{escape(r.run_id)}</a></td><td>{r.engine}</td>'
        f'<td class="status">{escape(r.status)}</td><td>{r.total}</td><td>{r.succeeded}</td>'
        f'<td>{r.failed}</td><td>{r.flagged}</td><td>{escape(r.started_at[:19].replace("T", " "))}</td>'
        f'<td>{_seconds(r.duration_s)}</td><td>{_usd(r.cost_usd)}</td></tr>' for r in shown)
    table = ('<table class="runs"><thead><tr><th></th><th>run</th><th>engine</th><th>status</th>'
             '<th>URLs</th><th>stored</th><th>failed</th><th>flagged</th><th>started (UTC)</th>'
             f'<th>duration</th><th>cost</th></tr></thead><tbody>{lines}</tbody></table>'
             if shown else '<p class="empty">No runs yet: start one with <code>baton run</code>.</p>')
    compare = ('<form id="compare" method="get" action="/compare"><button type="submit">'
               'Compare the two ticked runs</button></form>')
    running = any(r.status == "running" for r in shown)
    return page("Runs", form + table + compare, refresh=running)


def _cost_table(cost: Cost) -> str:
    cells = "".join(f"<tr><td>{service}</td><td>{_usd(value)}</td></tr>"
                    for service, value in cost.by_service.items() if value)
    notes = "".join(f"<li>{escape(note)}</li>" for note in cost.estimated)
    return (f'<table class="cost"><tbody>{cells}<tr class="total"><td>total</td>'
            f'<td>{_usd(cost.total_usd)}</td></tr></tbody></table>'
            f'<details><summary>what is estimated</summary><ul>{notes}</ul></details>')


def run_page(view: RunView, cost: Cost) -> str:
    """A run: its counts, the Gantt, the pipeline graph, its cost; a bar's click shows the
    invocation."""
    facts = (f'<dl class="facts"><dt>engine</dt><dd>{view.engine}</dd><dt>status</dt>'
             f'<dd class="status">{escape(view.status)}</dd><dt>URLs</dt><dd>{view.total}</dd>'
             f'<dt>stored</dt><dd>{view.succeeded}</dd><dt>failed</dt><dd>{view.failed}</dd>'
             f'<dt>flagged</dt><dd>{view.flagged}</dd><dt>wall time</dt>'
             f'<dd>{_seconds(view.duration_s)}</dd><dt>cost</dt><dd>{_usd(cost.total_usd)}</dd></dl>')
    legend = "".join(f'<span class="key"><i style="background:{colour}"></i>{outcome}</span>'
                     for outcome, colour in COLOURS.items())
    legend += '<span class="key"><b>bold URL</b>: ended last (the critical path)</span>'
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in view.notes)
    body = (f'{facts}<h2>Timeline</h2><div class="legend">{legend}</div>'
            f'<div class="scroll" id="timeline" data-run="{escape(view.run_id)}">{gantt_svg(view)}</div>'
            f'{notes}<section id="detail" hidden><h2>Invocation</h2><div id="detail-body"></div></section>'
            f'<h2>Pipeline</h2><div class="scroll">{graph_svg(view)}</div>'
            f'<h2>Cost (estimated, AWS list prices)</h2>{_cost_table(cost)}')
    return page(f"Run {view.run_id}", body, refresh=view.ended_at is None)


def bar_detail(view: RunView, index: int, logs: list[str]) -> dict[str, Any]:
    """A bar as the page's detail panel shows it (JSON)."""
    bar = view.bars[index]
    return {"url": bar.url, "step": bar.step, "attempt": bar.attempt, "attempts": bar.attempts,
            "outcome": bar.outcome, "started_at": bar.started_at.isoformat(),
            "ended_at": bar.ended_at.isoformat(), "duration_ms": round(bar.duration_ms, 1),
            "error_type": bar.error_type, "error": bar.error, "input": bar.input,
            "output": bar.output, "logs": logs}


def comparison(view: RunView, cost: Cost) -> dict[str, Any]:
    """The figures the Compare page puts side by side for one run."""
    latencies = list(item_latencies(view).values())
    return {"wall time": _seconds(view.duration_s), "URLs": view.total,
            "stored / failed / flagged": f"{view.succeeded} / {view.failed} / {view.flagged}",
            "item latency p50": f"{percentile(latencies, 0.5):.0f} ms",
            "item latency p95": f"{percentile(latencies, 0.95):.0f} ms",
            "item latency max": f"{max(latencies, default=0):.0f} ms",
            "step attempts": cost.counts["step_attempts"],
            "Lambda invocations": cost.counts["lambda_invocations"],
            "Lambda GB-seconds": f"{cost.counts['lambda_gb_seconds']:.3f}",
            "state transitions": cost.counts["state_transitions"],
            "events": cost.counts["events"], "cost": _usd(cost.total_usd),
            "cost per 1,000 URLs": _usd(cost.total_usd / max(view.total, 1) * 1000)}


def compare_page(runs: list[tuple[RunView, Cost]], rows: list[RunRow], picked: list[str]) -> str:
    """Two runs side by side (or the form to choose them)."""
    def select(name: str, chosen: str | None) -> str:
        options = "".join(f'<option value="{escape(r.run_id)}"{" selected" if r.run_id == chosen else ""}>'
                          f'{escape(r.run_id)} ({r.engine})</option>' for r in rows)
        return f'<select name="{name}">{options}</select>'

    chooser = (f'<form class="filters" method="get" action="/compare">'
               f'{select("a", picked[0] if picked else None)}'
               f'{select("b", picked[1] if len(picked) > 1 else None)}'
               f'<button type="submit">Compare</button></form>')
    if len(runs) < 2:
        return page("Compare", chooser + '<p class="empty">Choose two runs.</p>')
    figures = [comparison(view, cost) for view, cost in runs]
    heads = "".join(f'<th><a href="/runs/{quote(v.run_id)}">{escape(v.run_id)}</a><br>{v.engine}</th>'
                    for v, _ in runs)
    lines = "".join(f"<tr><td>{name}</td>" + "".join(f"<td>{escape(str(f[name]))}</td>" for f in figures)
                    + "</tr>" for name in figures[0])
    scale = max([*(max(item_latencies(v).values(), default=0) for v, _ in runs), 1.0])
    dists = "".join(f'<tr><td>{escape(v.run_id)} ({v.engine})</td><td>'
                    f'{distribution_svg(list(item_latencies(v).values()), scale)}</td></tr>'
                    for v, _ in runs)
    services = sorted({s for _, c in runs for s, value in c.by_service.items() if value})
    costs = "".join(f"<tr><td>{s}</td>" + "".join(f"<td>{_usd(c.by_service[s])}</td>" for _, c in runs)
                    + "</tr>" for s in services)
    body = (f'{chooser}<table class="compare"><thead><tr><th></th>{heads}</tr></thead>'
            f'<tbody>{lines}</tbody></table><h2>Per-item latency (first step start to last step end)</h2>'
            f'<table class="dists">{dists}</table>'
            f'<h2>Cost by service</h2><table class="compare"><thead><tr><th></th>{heads}</tr></thead>'
            f'<tbody>{costs}</tbody></table>')
    return page("Compare", body)


def compare_link(a: str, b: str) -> str:
    """The Compare page of two runs."""
    return "/compare?" + urlencode({"a": a, "b": b})


def monitor_page(entries: list[Any], runs: list[Any], checks: dict[str, list[Any]],
                 alerts: list[Any]) -> str:
    """The watchlist, each URL's checks over the recent monitor runs, and the alerts sent."""
    watch = "".join(f"<tr><td>{escape(e.url)}</td><td>{escape(e.label or '')}</td>"
                    f"<td>{e.review_threshold if e.review_threshold is not None else '—'}</td>"
                    f"<td>{e.block_threshold if e.block_threshold is not None else '—'}</td></tr>"
                    for e in entries)
    urls = list(dict.fromkeys([*(e.url for e in entries),
                               *(c.url for run in runs for c in checks.get(run.run_id, []))]))
    oldest_first = list(reversed(runs))
    heads = "".join(f'<th title="{escape(r.run_id)}"><a href="/runs/{quote(r.run_id)}">'
                    f'{r.started_at:%m-%d %H:%M}</a><br>'
                    f'{"skipped" if r.status == MonitorRunStatus.SKIPPED else r.engine}</th>'
                    for r in oldest_first)
    # Each run's checks by URL, looked up once per cell (not scanned: URLs x runs x checks).
    by_url = {run.run_id: {c.url: c for c in checks.get(run.run_id, [])} for run in oldest_first}
    history = ""
    for url in urls:
        cells = ""
        for run in oldest_first:
            check = by_url[run.run_id].get(url)
            if check is None and run.status == MonitorRunStatus.SKIPPED:
                # The firing started nothing: the previous run was still going (it followed it).
                cells += '<td class="check skipped" title="the previous run was still going">—</td>'
                continue
            state = check.state.value if check else ""
            alert = " ⚑" if check and check.transition else ""
            cells += f'<td class="check {state}">{state}{alert}</td>'
        history += f"<tr><td>{escape(url)}</td>{cells}</tr>"
    sent = "".join(f"<tr><td>{escape(a.at[:19])}</td><td>{escape(a.subject)}</td></tr>" for a in alerts)
    empty = '<tr><td class="empty" colspan="99">{}</td></tr>'
    watch = watch or empty.format("no watched URLs: <code>baton watch add URL</code>")
    history = history or empty.format("no monitor runs yet: <code>baton monitor --once</code>")
    sent = sent or empty.format("no alerts in the alerts queue")
    body = (f'<h2>Watchlist</h2><table class="runs"><thead><tr><th>URL</th><th>label</th>'
            f'<th>review</th><th>block</th></tr></thead><tbody>{watch}</tbody></table>'
            f'<h2>Checks (⚑ an alerted transition)</h2><div class="scroll"><table class="runs checks">'
            f'<thead><tr><th>URL</th>{heads}</tr></thead><tbody>{history}</tbody></table></div>'
            f'<h2>Alerts sent</h2><table class="runs"><tbody>{sent}</tbody></table>')
    return page("Monitor", body)
