"""`baton run`: start a pipeline run on a deployed stack with either engine, follow it, summarise it.

Every engine's result is turned into the same ``RunSummary`` (the pipeline's own contract), so
the table, the JSON and the tests do not care which engine ran.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from baton import deploy
from baton.errors import BatonError
from baton.targets import client
from engines.client import (
    Deployment,
    EngineClient,
    EngineFailed,
    Progress,
    RunIncomplete,
    engine_client,
    follow,
)
from pipeline.models import MAX_CONCURRENCY, RunRequest, RunSummary, url_problem
from pipeline.steps import ENGINES

POLL_S = 0.5


def read_watchlist(path: Path) -> list[str]:
    """URLs of a watchlist file: one per line, '#' comments and blank lines ignored.

    Any bad line fails the whole file, naming every bad line, so nothing half-read is run.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BatonError(f"cannot read the watchlist: {error}") from error
    urls, problems = [], []
    for number, line in enumerate(lines, start=1):
        url = line.split("#", 1)[0].strip()
        if not url:
            continue
        if (why := url_problem(url)) is not None:
            problems.append(f"  line {number}: {url!r}: {why}")
        urls.append(url)
    if problems:
        raise BatonError(f"{path} has bad lines (nothing was run):\n" + "\n".join(problems))
    return urls


def run_request(urls: list[str], max_concurrency: int) -> RunRequest:
    """A validated run request: at least one URL, all well formed, duplicates dropped."""
    if not urls:
        raise BatonError("no URLs to run: give --url URL (repeatable) or --watchlist FILE")
    bad = [f"  {url!r}: {why}" for url in urls if (why := url_problem(url)) is not None]
    if bad:
        raise BatonError("malformed URL(s), nothing was run:\n" + "\n".join(bad))
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise BatonError(f"--max-concurrency must be between 1 and {MAX_CONCURRENCY}")
    run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return RunRequest(run_id=run_id, urls=list(dict.fromkeys(urls)), max_concurrency=max_concurrency)


def run(engine_name: str, target: str, stack: str, request: RunRequest, wait: bool = True,
        show: Callable[[Progress], None] | None = None, timeout_s: float = 3600) -> RunSummary | str:
    """Start the run; with ``wait``, follow it to its summary, else return its handle."""
    if engine_name not in ENGINES:
        raise BatonError(f"unknown engine {engine_name!r}; choose one of: {', '.join(ENGINES)}")
    deployment = Deployment.from_outputs(deploy.stack_outputs(target, stack))
    try:
        engine = engine_client(engine_name, deployment, lambda service: client(service, target))
    except ValueError as error:
        raise BatonError(f"stack {stack} cannot run it: {error}") from error
    try:
        handle = engine.start(request)
    except EngineFailed as error:  # refused before it started (e.g. over an input limit)
        raise BatonError(str(error)) from error
    if not wait:
        return handle
    return wait_for(engine, handle, request, show=show, timeout_s=timeout_s)


def wait_for(engine: EngineClient, handle: str, request: RunRequest,
             show: Callable[[Progress], None] | None = None, timeout_s: float = 3600) -> RunSummary:
    """Follow a started run (or redrive) to its summary, showing progress; BatonError otherwise."""
    deadline = time.monotonic() + timeout_s
    try:
        return follow(engine, handle, request, expired=lambda: time.monotonic() > deadline,
                      poll_seconds=POLL_S, show=show)
    except EngineFailed as error:
        raise BatonError(str(error)) from error
    except RunIncomplete:
        raise BatonError(f"run {request.run_id} did not finish in {timeout_s:.0f} s; "
                         "it may still run") from None


def progress_line(progress: Progress, width: int = 30) -> str:
    filled = int(width * progress.done / max(progress.total, 1))
    current = f" · {progress.current}" if progress.current else ""
    return (f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} done, "
            f"{progress.failed} failed{current}")


def show_progress(progress: Progress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + progress_line(progress).ljust(100))
        sys.stderr.flush()


def summary_table(summary: RunSummary) -> str:
    rows = [("URL", "outcome", "verdict", "score", "changed", "attempts", "ms")]
    for item in summary.items:
        record = item.record
        outcome = "stored" if item.succeeded and record else (
            "not modified" if item.succeeded else f"{item.error_type} in {item.failed_step}")
        rows.append((item.url, outcome, record.verdict.value if record else "",
                     f"{record.score:.2f}" if record else "", record.change.value if record else "",
                     str(item.attempts), f"{item.duration_ms:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append(f"run {summary.run_id} ({summary.engine}): {summary.succeeded} stored, "
                 f"{summary.failed} failed, {summary.flagged} flagged of {summary.total}")
    return "\n".join(lines)
