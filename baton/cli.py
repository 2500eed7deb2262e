"""The `baton` command line: one sub-command per verb, each a short function over baton's modules."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import EndpointConnectionError

from baton import deploy, targets
from baton.errors import BatonError
from baton.localcloud import DEFAULT_PORT, LocalCloud, probe_health

# Logical function names and the stack outputs that hold their deployed names.
FUNCTIONS = {
    "scraper": "ScraperFunctionName",
    "transformer": "TransformerFunctionName",
    "moderator": "ModeratorFunctionName",
    "store": "StoreFunctionName",
    "orchestrator": "OrchestratorFunctionName",
}
# Parameters a deploy to an emulator gets unless given: the sample site is local by nature.
EMULATOR_PARAMETERS = {"ScraperAllowedHosts": "127.0.0.1:8765,localhost:8765"}


def say(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    cloud = LocalCloud(say=say)
    instance, started = cloud.up(port=args.port, persist=args.persist)
    if not started:
        print(f"The local cloud is already running at {instance.endpoint} (pid {instance.pid}).")
        if instance.port != args.port:
            print(f"Note: it listens on port {instance.port}, not {args.port}; `baton down` first "
                  "to move it.")
        return 0
    persisted = f", state kept in {cloud.state_dir}" if instance.persist else ""
    print(f"The local cloud is up at {instance.endpoint} (MiniStack {instance.version}, "
          f"pid {instance.pid}{persisted}).")
    print(f"Log: {cloud.log_file}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cloud = LocalCloud(say=say)
    stopped = cloud.down()
    if stopped is None:
        print("The local cloud is not running; nothing to stop.")
    else:
        saved = " (state saved)" if stopped.persist else ""
        print(f"Stopped the local cloud at {stopped.endpoint} (pid {stopped.pid}){saved}.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cloud = LocalCloud(say=say)
    instance = cloud.running()
    if instance is None:
        print("The local cloud is not running. Start it with: baton up")
        return 3  # the LSB code for "not running", so scripts can tell
    print(f"running   {instance.endpoint}\n"
          f"pid       {instance.pid}\n"
          f"version   MiniStack {instance.version}\n"
          f"persist   {'yes' if instance.persist else 'no'}\n"
          f"state     {cloud.state_dir}\n"
          f"log       {cloud.log_file}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    ministack_python, lambda_python = LocalCloud(say=say).prepare()
    print(f"local cloud environment:   {ministack_python.parent.parent}")
    print(f"function runtime (Python): {lambda_python.parent.parent}")
    return 0


def ensure_target(target: str) -> None:
    """Start the local cloud for the `local` target if nothing answers there; check the target."""
    if target == "local" and probe_health(targets.local_port()) is None:
        say("The local cloud is not running; starting it (baton up)…")
        LocalCloud(say=say).up(port=targets.local_port())
    targets.require_reachable(target)


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise BatonError(f"--param takes KEY=VALUE, got {pair!r}")
        parameters[key] = value
    return parameters


def cmd_build(args: argparse.Namespace) -> int:
    template = deploy.load_template(args.template)
    built = deploy.build_all(template, deploy.ROOT / "build" / args.target, args.target == "aws")
    for (logical_id, _), artifact in built.items():
        print(f"{logical_id:<24} {artifact.stat().st_size / 1e6:7.2f} MB  {artifact}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    ensure_target(args.target)
    parameters = parse_parameters(args.param)
    if args.target != "aws":
        parameters = EMULATOR_PARAMETERS | parameters
    started = time.monotonic()
    result = deploy.deploy(args.target, args.stack_name, parameters, args.template, say=say)
    took = time.monotonic() - started
    print(f"Stack {result.stack} on {args.target}: "
          f"{'deployed' if result.changed else 'no changes'} ({took:.1f} s)")
    for key, value in sorted(result.outputs.items()):
        print(f"  {key:<28} {value}")
    return 0


def function_name(target: str, stack: str, logical: str) -> str:
    """The deployed name of a logical function (scraper, …), from the stack outputs."""
    outputs = deploy.stack_outputs(target, stack)
    if FUNCTIONS[logical] not in outputs:
        raise BatonError(f"stack {stack} has no {logical} function (output {FUNCTIONS[logical]})")
    return outputs[FUNCTIONS[logical]]


def read_event(source: str | None) -> bytes:
    """The event to send: a JSON file, '-' for stdin, or an empty object; checked to be JSON."""
    if source is None:
        return b"{}"
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise BatonError(f"cannot read the event file: {error}") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise BatonError(f"invalid event JSON in {name}: {error.msg} at line {error.lineno} "
                         f"column {error.colno} (char {error.pos})") from error
    return text.encode()


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = read_event(args.event)
    targets.require_reachable(args.target)
    name = function_name(args.target, args.stack_name, args.function)
    lambdas = targets.client("lambda", args.target)
    if args.async_:
        response = lambdas.invoke(FunctionName=name, Payload=payload, InvocationType="Event")
        print(f"queued {args.function} ({name}), status {response['StatusCode']}")
        return 0
    response = lambdas.invoke(FunctionName=name, Payload=payload, LogType="Tail")
    body = response["Payload"].read().decode()
    try:
        print(json.dumps(json.loads(body), indent=2))
    except json.JSONDecodeError:
        print(body)
    if response.get("LogResult"):
        say("--- log tail ---\n" + base64.b64decode(response["LogResult"]).decode(errors="replace"))
    if response.get("FunctionError"):
        error_type = json.loads(body).get("errorType", "?") if body.startswith("{") else "?"
        say(f"{args.function} failed: FunctionError={response['FunctionError']} "
            f"errorType={error_type}")
        return 1
    return 0


def parse_since(text: str) -> float:
    """'10m', '2h', '30s', '1d' → seconds."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30s, 10m, 2h or 1d, got {text!r}")
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def cmd_logs(args: argparse.Namespace) -> int:
    targets.require_reachable(args.target)
    group = f"/aws/lambda/{function_name(args.target, args.stack_name, args.function)}"
    logs = targets.client("logs", args.target)
    start_ms = int((time.time() - args.since) * 1000)
    seen: set[object] = set()
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group, startTime=start_ms)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        for event in events:
            # Some emulators give no eventId: the stream, time and text identify an event too.
            key = event.get("eventId") or (event.get("logStreamName"), event["timestamp"],
                                           event["message"])
            if key not in seen:
                seen.add(key)
                stamp = time.strftime("%H:%M:%S", time.localtime(event["timestamp"] / 1000))
                print(f"{stamp} {event['message'].rstrip()}", flush=True)
        if not args.follow:
            if not events:
                say(f"no log events in {group} since {args.since:.0f} s ago")
            return 0
        time.sleep(1)


def cmd_destroy(args: argparse.Namespace) -> int:
    targets.require_reachable(args.target)
    if deploy.destroy(args.target, args.stack_name, say=say):
        print(f"Deleted stack {args.stack_name} on {args.target}.")
    else:
        print(f"Stack {args.stack_name} is not deployed on {args.target}; nothing to delete.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from baton import run

    urls = list(args.url)
    if args.watchlist:
        urls += run.read_watchlist(args.watchlist)
    request = run.run_request(urls, args.max_concurrency)
    targets.require_reachable(args.target)
    say(f"run {request.run_id}: {len(request.urls)} URL(s) with the {args.engine} engine")
    result = run.run(args.engine, args.target, args.stack_name, request, wait=not args.no_wait,
                     show=None if args.json else run.show_progress)
    if isinstance(result, str):
        print(f"started {request.run_id}: {result}")
        return 0
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    print(result.model_dump_json(indent=2) if args.json else run.summary_table(result))
    return 1 if result.failed and not args.allow_failures else 0


def cmd_executions(args: argparse.Namespace) -> int:
    from baton.executions import Executions, table

    targets.require_reachable(args.target)
    found = Executions(args.target, args.stack_name).recent(args.engine, args.limit)
    if args.json:
        print(json.dumps([vars(execution) for execution in found], indent=2))
    else:
        print(table(found))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from baton.executions import Executions, table

    targets.require_reachable(args.target)
    engine, rows = Executions(args.target, args.stack_name).history(args.run_id)
    if args.json:
        print(json.dumps({"run_id": args.run_id, "engine": engine,
                          "events": [vars(row) for row in rows]}, indent=2))
    else:
        print(f"run {args.run_id} ({engine})\n{table(rows)}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from baton.watch import Watch, entries_table, watchlist_table

    targets.require_reachable(args.target)
    watch = Watch(watchlist_table(args.target, args.stack_name))
    if args.action == "add":
        entry, new = watch.add(args.url, args.label, args.review, args.block)
        print(f"{'Watching' if new else 'Updated'} {entry.url}")
    elif args.action == "remove":
        removed = watch.remove(args.urls)
        print(f"Stopped watching {len(removed)} URL(s).")
    elif args.action == "import":
        imported = watch.import_file(args.file)
        print(f"Imported {args.file}: {len(imported.added)} added, {len(imported.updated)} updated.")
    else:
        print(entries_table(watch.entries()))
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from baton import monitoring

    targets.require_reachable(args.target)
    if args.schedule or args.engine:
        if args.schedule:
            monitoring.validate_schedule(args.schedule)  # before anything is deployed
        changed = monitoring.set_schedule(args.target, args.stack_name, args.schedule, args.engine)
        print("Monitor settings " + ("updated." if changed else "unchanged."))
    table = monitoring.monitor_table(args.target, args.stack_name)
    if args.once:
        run = monitoring.run_once(args.target, args.stack_name, args.engine)
        print(monitoring.run_report(table, run))
        return 1 if run.status == "failed" else 0
    say("Following the monitor's runs (Ctrl-C to stop)…")
    seen = {run.run_id for run in table.recent_runs(20)}
    while True:
        for run in monitoring.new_runs(table, seen):
            print(monitoring.run_report(table, run), flush=True)
        time.sleep(2)


def cmd_alerts(args: argparse.Namespace) -> int:
    from baton import monitoring

    targets.require_reachable(args.target)
    alerts = monitoring.recent_alerts(args.target, args.stack_name, args.limit)
    if args.json:
        print(json.dumps([vars(alert) for alert in alerts], indent=2))
    elif not alerts:
        print("No alerts.")
    for alert in [] if args.json else alerts:
        print(f"{alert.at}  {alert.subject}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from baton import site

    return site.main(["--port", str(args.port)] + (["--quiet"] if args.quiet else []))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baton",
        description="Run the scraper → transformer → moderator → store pipeline on an embedded "
                    "local cloud, LocalStack or AWS.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], summary: str
            ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", cmd_up, "start the embedded local cloud on 127.0.0.1 and wait until healthy")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    up.add_argument("--persist", action="store_true",
                    help="keep the cloud's state across down/up (saved on graceful stop)")
    add("down", cmd_down, "stop the embedded local cloud")
    add("status", cmd_status, "show whether the embedded local cloud runs, and where")
    add("setup", cmd_setup, "create the local cloud's environments ahead of time")

    def with_target(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--target", choices=targets.TARGETS, default="local",
                         help="where to act (default %(default)s)")
        sub.add_argument("--stack-name", default=deploy.DEFAULT_STACK,
                         help="CloudFormation stack (default %(default)s)")
        return sub

    build_cmd = with_target(add("build", cmd_build, "build the function zips and the dependency layer"))
    deploy_cmd = with_target(add("deploy", cmd_deploy, "build, upload and deploy template.yaml"))
    for sub in (build_cmd, deploy_cmd):
        sub.add_argument("--template", type=Path, default=deploy.TEMPLATE,
                         help="the SAM template (default: the project's template.yaml)")
    deploy_cmd.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                            help="a template parameter (repeatable)")
    invoke = with_target(add("invoke", cmd_invoke, "invoke a deployed function"))
    invoke.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION",
                        help=f"one of: {', '.join(FUNCTIONS)}")
    invoke.add_argument("--event", metavar="FILE", help="event JSON file, or - for stdin")
    invoke.add_argument("--async", dest="async_", action="store_true",
                        help="invoke asynchronously (InvocationType Event)")
    logs = with_target(add("logs", cmd_logs, "show a deployed function's logs"))
    logs.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION",
                        help=f"one of: {', '.join(FUNCTIONS)}")
    logs.add_argument("--since", type=parse_since, default=parse_since("10m"),
                      help="how far back, e.g. 30s, 10m, 2h (default 10m)")
    logs.add_argument("--follow", action="store_true", help="keep printing new events")
    with_target(add("destroy", cmd_destroy, "delete the deployed stack"))
    run_cmd = with_target(add("run", cmd_run, "run the pipeline over URLs with an engine"))
    run_cmd.add_argument("--engine", choices=("orchestrator", "stepfunctions", "choreography"),
                         default="orchestrator", help="who coordinates (default %(default)s)")
    run_cmd.add_argument("--url", action="append", default=[], help="a URL (repeatable)")
    run_cmd.add_argument("--watchlist", type=Path, help="a file of URLs, one per line")
    run_cmd.add_argument("--max-concurrency", type=int, default=8,
                         help="URLs in flight at once (default %(default)s)")
    run_cmd.add_argument("--no-wait", action="store_true", help="start the run and return")
    run_cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    run_cmd.add_argument("--allow-failures", action="store_true",
                         help="exit 0 even when some URLs failed")
    executions = with_target(add("executions", cmd_executions, "list recent runs of every engine"))
    executions.add_argument("--engine", choices=("orchestrator", "stepfunctions", "choreography"))
    executions.add_argument("--limit", type=int, default=20, help="at most (default %(default)s)")
    executions.add_argument("--json", action="store_true", help="print JSON")
    history = with_target(add("history", cmd_history, "show one run's step-by-step history"))
    history.add_argument("run_id", metavar="RUN_ID")
    history.add_argument("--json", action="store_true", help="print JSON")
    watch = with_target(add("watch", cmd_watch, "manage the monitor's watchlist"))
    actions = watch.add_subparsers(dest="action", metavar="ACTION", required=True)
    watch_add = actions.add_parser("add", help="watch a URL (or update its options)")
    watch_add.add_argument("url")
    watch_add.add_argument("--label")
    watch_add.add_argument("--review", type=float, help="this URL's review threshold")
    watch_add.add_argument("--block", type=float, help="this URL's block threshold")
    actions.add_parser("remove", help="stop watching URLs").add_argument("urls", nargs="+")
    actions.add_parser("list", help="show the watchlist")
    actions.add_parser("import", help="add every URL of a file (all or none)").add_argument(
        "file", type=Path)
    monitor = with_target(add("monitor", cmd_monitor, "set, trigger or follow the scheduled monitor"))
    monitor.add_argument("--schedule", metavar="EXPR",
                         help="EventBridge schedule, e.g. 'rate(5 minutes)' or 'cron(0 8 * * ? *)'")
    monitor.add_argument("--engine", choices=("orchestrator", "stepfunctions"),
                         help="the engine the schedule drives")
    when = monitor.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", action="store_true", help="run the monitor now and report")
    when.add_argument("--follow", action="store_true", help="show each scheduled run as it ends")
    alerts = with_target(add("alerts", cmd_alerts, "show recent alerts"))
    alerts.add_argument("--limit", type=int, default=20, help="at most (default %(default)s)")
    alerts.add_argument("--json", action="store_true", help="print JSON")
    site = add("site", cmd_site, "serve the sample site on 127.0.0.1 for demos and tests")
    site.add_argument("--port", type=int, default=8765, help="port (default %(default)s)")
    site.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The CLI shares code with the functions; their Powertools logs are for CloudWatch, not for
    # the user's terminal (nor for --json output).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BatonError as error:
        say(f"baton {args.command}: error: {error}")
        return error.exit_code
    except EndpointConnectionError as error:
        target = getattr(args, "target", "local")
        say(f"baton {args.command}: error: could not connect to {error.kwargs.get('endpoint_url')} "
            f"({target}). " + ("Start it with: baton up" if target == "local" else
                               "Start LocalStack with: localstack start -d"
                               if target == "localstack" else "Check your network and region."))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130


def entry() -> None:
    """The `baton` executable. Piped into `head`, it stops quietly when the reader goes (the
    signal is set here, not in main(), which tests call in-process)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    entry()
