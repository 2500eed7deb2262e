"""`baton run`: start a pipeline run on a deployed stack with either engine, follow it, summarise it.

Every engine's result is turned into the same ``RunSummary`` (the pipeline's own contract), so
the table, the JSON and the tests do not care which engine ran.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import ClientError

from baton import deploy, faults, targets, wiring
from baton.check import faults_key
from baton.errors import BatonError
from baton.targets import client
from baton.watch import WatchLine, listed, scan_watchlist
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
from pipeline.steps import ENGINES, STEPS

POLL_S = 0.5


def read_watchlist(path: Path) -> list[WatchLine]:
    """The URL lines of a watchlist file, in the grammar `baton watch import` reads: a URL, then
    optional label, thresholds (the monitor's) and fetch options (headers, cookies, robots.txt
    opt-out, which a run passes to the scraper); '#' comments and blank lines ignored; a URL
    given twice is one item (its first line).

    Any bad line fails the whole file, naming every bad line, so nothing half-read is run.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BatonError(f"cannot read the watchlist: {error}") from error
    scanned = scan_watchlist(text)
    if scanned.problems:
        raise BatonError(f"{path} has bad lines (nothing was run):\n" + listed(scanned.problems))
    return scanned.lines


def run_request(urls: list[str], max_concurrency: int,
                lines: Sequence[WatchLine] = ()) -> RunRequest:
    """A validated run request for ``urls`` then the watchlist's ``lines``: at least one URL,
    all well formed, duplicates dropped; each line's fetch options (headers, cookies,
    robots.txt) go with its URL."""
    urls = [*urls, *(line.url for line in lines)]
    if not urls:
        raise BatonError("no URLs to run: give --url URL (repeatable) or --watchlist FILE")
    bad = [f"  {url!r}: {why}" for url in urls if (why := url_problem(url)) is not None]
    if bad:
        raise BatonError("malformed URL(s), nothing was run:\n" + "\n".join(bad))
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise BatonError(f"--max-concurrency must be between 1 and {MAX_CONCURRENCY}")
    run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return RunRequest(run_id=run_id, urls=list(dict.fromkeys(urls)), max_concurrency=max_concurrency,
                      options={line.url: line.options for line in lines if line.options})


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


def usage_error(message: str) -> BatonError:
    """A BatonError that exits 2, as argparse does for a bad command line."""
    error = BatonError(message)
    error.exit_code = 2
    return error


def refuse_faults_off_local(target: str) -> None:
    """Fault injection lives in baton's local cloud: refuse it anywhere else (exit 2)."""
    if target != "local":
        raise usage_error(f"--faults works only with the local cloud (--target local), not "
                          f"{target}: faults are injected by baton's local cloud and never "
                          "reach LocalStack or AWS")


def step_functions(target: str, stack: str) -> list[str]:
    """The deployed names of the functions Lambda faults may strike: the pipeline steps' and the
    coordinators' (the orchestrator, the tracker)."""
    logical = {step.resource for step in STEPS}
    logical |= {wiring.ORCHESTRATOR, wiring.TRACKER}
    try:
        resources = client("cloudformation", target).describe_stack_resources(
            StackName=stack)["StackResources"]
    except ClientError as error:
        raise BatonError(f"cannot read stack {stack}'s functions on {target} ({error}); "
                         "deploy it first: baton deploy") from error
    return sorted(resource["PhysicalResourceId"] for resource in resources
                  if resource["LogicalResourceId"] in logical)


@contextmanager
def faults_on(target: str, stack: str, spec: tuple[faults.Rule, ...], seed: int,
              run_id: str) -> Iterator[dict[str, int]]:
    """Inject ``spec`` into the local cloud for the run ``run_id`` while the block runs; the
    yielded dict is filled, on leaving, with the faults injected by kind (kept with the run)."""
    refuse_faults_off_local(target)
    endpoint = str(targets.endpoint(target))
    settings = {"spec": ",".join(map(str, spec)), "seed": seed, "run_id": run_id,
                "functions": step_functions(target, stack)}
    counts: dict[str, int] = {}
    try:
        faults.admin(endpoint, "PUT", settings)
    except faults.FaultsUnavailable as error:
        raise BatonError(f"cannot inject faults: {error}") from error
    try:
        yield counts
    finally:
        try:
            counts.update(faults.injected_counts(faults.admin(endpoint, "DELETE")))
        except faults.FaultsUnavailable as error:
            raise BatonError(f"could not turn the faults off: {error}") from error
    keep_faults(target, stack, run_id, counts)


def keep_faults(target: str, stack: str, run_id: str, counts: dict[str, int]) -> None:
    """Keep the faults a run met beside its request, where `baton check` finds them."""
    bucket = deploy.stack_outputs(target, stack)["DataBucketName"]
    client("s3", target).put_object(Bucket=bucket, Key=faults_key(run_id),
                                    Body=json.dumps(counts).encode(),
                                    ContentType="application/json")


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
