"""The run's figures, drawn: the Gantt (SVG and text), the pipeline graph, latency distributions.

Everything is rendered on the server as SVG (no script library): a bar is a ``<rect>`` carrying
its index, which the page's own small script turns into a click that shows the invocation.
"""

from __future__ import annotations

import math
from html import escape
from statistics import quantiles

from baton.ui.model import STEPS, Bar, RunView

COLOURS = {"succeeded": "#2e9d5b", "retried": "#e0a526", "failed": "#d2453d", "running": "#4a7fd4"}
# Each step a lighter shade than the one before it, whatever the registry holds.
STEP_SHADE = {step: round(1.0 - 0.45 * index / max(len(STEPS) - 1, 1), 2)
              for index, step in enumerate(STEPS)} | {"alert": 0.9, "chain": 1.0}
ROW_H, LABEL_W, CHART_W, AXIS_H = 24, 330, 700, 26


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0 to 1) percentile of ``values`` (inclusive method); 0 for none."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    cuts = quantiles(sorted(values), n=100, method="inclusive")
    return cuts[min(98, max(0, round(share * 100) - 1))]


def item_latencies(view: RunView) -> dict[str, float]:
    """Each URL's latency in ms: from its first bar's start to its last bar's end."""
    latencies = {}
    for url in view.urls():
        bars = view.bars_of(url)
        if bars:
            latencies[url] = (max(b.ended_at for b in bars) - min(b.started_at for b in bars)
                              ).total_seconds() * 1000
    return latencies


def critical_url(view: RunView) -> str | None:
    """The URL that ended last: its chain of steps is the run's critical path."""
    ends = {url: max(b.ended_at for b in view.bars_of(url)) for url in view.urls() if view.bars_of(url)}
    return max(ends, key=lambda url: ends[url]) if ends else None


def _span(view: RunView) -> tuple[float, float]:
    """The chart's time origin (epoch s) and length (s)."""
    starts = [b.started_at.timestamp() for b in view.bars]
    ends = [b.ended_at.timestamp() for b in view.bars]
    if view.started_at:
        starts.append(view.started_at.timestamp())
    if view.ended_at:
        ends.append(view.ended_at.timestamp())
    if not starts:
        return 0.0, 1.0
    origin = min(starts)
    return origin, max(max(ends or starts) - origin, 0.001)


def _nice_step(length: float) -> float:
    raw = length / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def bar_label(bar: Bar) -> str:
    """A bar's one-line description (its tooltip, and the text timeline's detail)."""
    tries = f" x{bar.attempts} attempts" if bar.attempts > 1 else (
        f" attempt {bar.attempt}" if bar.attempt > 1 else "")
    error = f" — {bar.error_type}" if bar.error_type else ""
    return f"{bar.step}{tries}: {bar.outcome}, {bar.duration_ms:.0f} ms{error}"


def gantt_svg(view: RunView) -> str:
    """One row per URL, one bar per step attempt (or recorded span), coloured by outcome."""
    urls = view.urls()
    origin, length = _span(view)
    scale = CHART_W / length
    height = AXIS_H + ROW_H * max(len(urls), 1) + 6
    parts = [f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + CHART_W + 10}" '
             f'height="{height}" role="img" aria-label="timeline of {escape(view.run_id)}">']
    step = _nice_step(length)
    tick = 0.0
    while tick <= length + 1e-9:
        x = LABEL_W + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{AXIS_H - 10}">{tick:g} s</text>')
        tick += step
    index = {id(bar): n for n, bar in enumerate(view.bars)}
    critical = critical_url(view)
    for row, url in enumerate(urls):
        y = AXIS_H + row * ROW_H
        mark, note = ("critical", " (ended last: the run's critical path)") if url == critical else ("", "")
        parts.append(f'<g class="row {mark}" data-url="{escape(url)}">'
                     f'<text class="url" x="{LABEL_W - 8}" y="{y + 16}">{escape(_short(url))}'
                     f'<title>{escape(url + note)}</title></text>')
        for bar in view.bars_of(url):
            x = LABEL_W + (bar.started_at.timestamp() - origin) * scale
            width = max(bar.duration_ms / 1000 * scale, 2.0)
            parts.append(
                f'<rect class="bar {bar.outcome}" data-bar="{index[id(bar)]}" '
                f'data-step="{bar.step}" data-outcome="{bar.outcome}" x="{x:.1f}" y="{y + 4}" '
                f'width="{width:.1f}" height="{ROW_H - 8}" fill="{COLOURS[bar.outcome]}" '
                f'fill-opacity="{STEP_SHADE.get(bar.step, 1.0)}" tabindex="0">'
                f'<title>{escape(bar_label(bar))}</title></rect>')
            if bar.attempts > 1:  # retries inside one recorded span: ticks, one per attempt
                for k in range(1, bar.attempts):
                    tx = x + width * k / bar.attempts
                    parts.append(f'<line class="attempt" x1="{tx:.1f}" y1="{y + 4}" x2="{tx:.1f}" '
                                 f'y2="{y + ROW_H - 4}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _short(url: str, width: int = 48) -> str:
    bare = url.split("://", 1)[-1]
    return bare if len(bare) <= width else "…" + bare[-(width - 1):]


def step_stats(view: RunView) -> dict[str, dict[str, float]]:
    """Per step: bars, attempts, failures, p50 and p95 of its bars' durations (ms)."""
    stats: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys([*STEPS, *(b.step for b in view.bars)]):
        bars = [b for b in view.bars if b.step == name]
        if not bars and name not in STEPS:
            continue
        durations = [b.duration_ms for b in bars]
        stats[name] = {
            "bars": len(bars), "attempts": sum(b.attempts for b in bars),
            "succeeded": sum(b.outcome == "succeeded" for b in bars),
            "failed": sum(b.outcome == "failed" for b in bars),
            "retried": sum(b.outcome == "retried" for b in bars) + sum(b.attempts - 1 for b in bars),
            "p50": percentile(durations, 0.5), "p95": percentile(durations, 0.95)}
    return stats


CHAIN = ("PageRequested", "PageScraped", "PageTransformed", "PageModerated", "PageStored")


def graph_svg(view: RunView) -> str:
    """The pipeline's steps as boxes with their counts and latencies; for choreography, the event
    chain between them."""
    stats = step_stats(view)
    names = [n for n in stats if n != "chain"] or list(STEPS)
    box_w, box_h, gap = 170, 78, 40
    width = len(names) * (box_w + gap) + 20
    parts = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{box_h + 50}">',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#666"/></marker></defs>']
    for n, name in enumerate(names):
        x = 10 + n * (box_w + gap)
        s = stats.get(name, {})
        bad = s.get("failed", 0) > 0
        parts.append(
            f'<g class="step" data-step="{name}"><rect x="{x}" y="20" width="{box_w}" height="{box_h}" '
            f'rx="8" class="{"bad" if bad else "ok"}"/>'
            f'<text class="name" x="{x + box_w / 2}" y="40">{name}</text>'
            f'<text x="{x + box_w / 2}" y="58">{s.get("succeeded", 0):.0f} ok · {s.get("failed", 0):.0f} '
            f'failed · {s.get("retried", 0):.0f} retried</text>'
            f'<text x="{x + box_w / 2}" y="76">p50 {s.get("p50", 0):.0f} ms · p95 {s.get("p95", 0):.0f} ms'
            f'</text></g>')
        if n:
            label = CHAIN[n] if view.engine == "choreography" and n < len(CHAIN) else ""
            parts.append(f'<line x1="{x - gap}" y1="{20 + box_h / 2}" x2="{x - 2}" y2="{20 + box_h / 2}" '
                         f'stroke="#666" marker-end="url(#arrow)"/>'
                         f'<text class="edge" x="{x - gap / 2}" y="14">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def distribution_svg(latencies: list[float], scale_ms: float, width: int = 420) -> str:
    """Per-item latencies as a strip of dots over a shared scale, with p50 and p95 marks."""
    height = 48
    parts = [f'<svg class="dist" xmlns="http://www.w3.org/2000/svg" width="{width + 20}" '
             f'height="{height}">',
             f'<line x1="10" y1="30" x2="{width + 10}" y2="30" stroke="#999"/>']
    for value in latencies:
        x = 10 + width * value / scale_ms
        parts.append(f'<circle cx="{x:.1f}" cy="22" r="4" fill="#4a7fd4" fill-opacity="0.7">'
                     f'<title>{value:.0f} ms</title></circle>')
    for share, label, y in ((0.5, "p50", 44), (0.95, "p95", 8)):
        x = 10 + width * percentile(latencies, share) / scale_ms
        parts.append(f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="34" stroke="#d2453d"/>'
                     f'<text class="tick" x="{x:.1f}" y="{y}">{label}</text>')
    parts.append(f'<text class="scale" x="{width + 10}" y="44">'
                 f'{scale_ms / 1000:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


OUTCOME_CHAR = {"succeeded": "█", "retried": "▒", "failed": "✗", "running": "░"}


def text_timeline(view: RunView, width: int = 60) -> str:
    """The Gantt as text: one line per URL, each bar drawn with its outcome's character."""
    origin, length = _span(view)
    urls = view.urls()
    label_w = min(max((len(_short(u)) for u in urls), default=10), 48)
    lines = [f"run {view.run_id} ({view.engine}, {view.status}): {len(urls)} URLs over "
             f"{length:.2f} s; █ succeeded ▒ retried ✗ failed ░ running; * the critical path"]
    lines.append(" " * label_w + " |" + "0 s".ljust(width - 6) + f"{length:.1f} s|")
    critical = critical_url(view)
    for url in urls:
        cells = [" "] * width
        for bar in view.bars_of(url):
            start = int((bar.started_at.timestamp() - origin) / length * (width - 1))
            end = int((bar.ended_at.timestamp() - origin) / length * (width - 1))
            for cell in range(start, max(end, start) + 1):
                cells[cell] = OUTCOME_CHAR[bar.outcome]
        steps = " ".join(f"{b.step[:5]}{'x' + str(b.attempts) if b.attempts > 1 else ''}"
                         f"{'' if b.outcome == 'succeeded' else ':' + b.outcome}"
                         for b in view.bars_of(url))
        mark = "*" if url == critical else " "
        lines.append(f"{_short(url, label_w).rjust(label_w)}{mark}|{''.join(cells)}| {steps}")
    lines += [f"note: {note}" for note in view.notes]
    return "\n".join(lines)
