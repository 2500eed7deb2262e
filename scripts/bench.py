"""`make bench`: the figures the issues set goals for, measured in one run on this machine.

Each line prints the measured figure, its goal, and their ratio (below 1.0 meets the goal).
Not a test: nothing here asserts, because a shared 2-core machine is noisy.
BATON_BENCH_ONLY=invokes,pipeline,engines,idle,monitor,scale,sweep runs just those parts;
BATON_BENCH_SIZES=1000,5000 sets the sizes of the scale part, BATON_BENCH_SWEEP=2000 the sweep's
(BATON_BENCH_SWEEP_CONCURRENCY=8,16: one sweep at each of the monitor's concurrencies).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The in-process baseline runs the handlers here: keep their logs and metrics off the report.
os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="1")

from baton import deploy, run  # noqa: E402
from baton.build import build_layer  # noqa: E402
from baton.errors import BatonError  # noqa: E402
from baton.localcloud import LocalCloud, Running  # noqa: E402
from baton.site import serve  # noqa: E402
from baton.targets import client  # noqa: E402
from pipeline.steps import ENGINES, STEP, STEPS  # noqa: E402
from tests.e2e.conftest import ROLE, UNLIMITED_HOST, free_port, zip_handler  # noqa: E402
from tests.lambda_context import FakeLambdaContext  # noqa: E402

PIPELINE_STEPS = tuple(step.name for step in STEPS)


def stack_parameters(allowed_hosts: str) -> dict[str, str]:
    """The bench's stack: the sample site allowed, and no per-host limit (every bench URL is on
    one host, so the default politeness would measure the limit, not the engines)."""
    return {"ScraperAllowedHosts": allowed_hosts, "ScraperHostConcurrency": UNLIMITED_HOST}


def report(name: str, seconds: float, goal_s: float) -> None:
    print(f"{name:<58} {seconds * 1000:9.1f} ms   goal {goal_s * 1000:7.0f} ms   "
          f"ratio {seconds / goal_s:5.2f}")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_start(state_root: Path, rounds: int = 5) -> None:
    samples = []
    for index in range(rounds):
        cloud = LocalCloud(state_dir=state_root / f"start-{index}")
        port = free_port()
        samples.append(timed(lambda: cloud.up(port=port)))  # noqa: B023 (called at once)
        cloud.down()
    report(f"local cloud start -> healthy (median of {rounds})", statistics.median(samples), 1.0)


def bench_invokes(instance: Running) -> None:
    def aws(service: str) -> Any:
        return boto3.client(service, endpoint_url=instance.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    lambdas = aws("lambda")

    created: list[str] = []

    def create(handler: str, module: str, layers: list[str]) -> str:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                Handler=handler, Code={"ZipFile": zip_handler(module)},
                                Layers=layers, Timeout=30)
        created.append(name)
        return name

    warm = create("fidelity.log_one_line", "fidelity.py", [])
    lambdas.invoke(FunctionName=warm, Payload=b"{}")
    samples = [timed(lambda: lambdas.invoke(FunctionName=warm, Payload=b"{}")["Payload"].read())
               for _ in range(200)]
    report("warm invoke, handler logging one line: p50 (200 calls)", percentile(samples, 0.5),
           0.012)
    report("warm invoke, handler logging one line: p90 (200 calls)", percentile(samples, 0.9),
           0.012)

    layer_zip = build_layer(ROOT / "tests" / "e2e" / "probe_layer", ROOT / "build")
    layer = lambdas.publish_layer_version(LayerName="bench-probe",
                                          Content={"ZipFile": layer_zip.read_bytes()})
    colds = []
    for _ in range(3):
        name = create("powertools_logger.handler", "powertools_logger.py",
                      [layer["LayerVersionArn"]])
        payload = b'{"marker": "bench"}'
        colds.append(timed(lambda: lambdas.invoke(FunctionName=name, Payload=payload)))  # noqa: B023
    # The first worker to use a layer extracts it; later cold starts find it extracted, as an
    # AWS execution environment finds /opt ready.
    report("cold start, Powertools + pydantic layer, first use of layer", colds[0], 0.8)
    report("cold start, Powertools + pydantic layer, layer extracted", statistics.median(colds[1:]),
           0.8)
    print(f"{'cold start (layer extracted) / warm p50':<58} "
          f"{statistics.median(colds[1:]) / percentile(samples, 0.5):9.1f}x")
    remove_probes(lambdas, created)
    lambdas.delete_layer_version(LayerName="bench-probe", VersionNumber=layer["Version"])


def remove_probes(lambdas: Any, functions: list[str]) -> None:
    """Delete the probe functions a part created (their warm workers stop): the later parts
    measure the pipeline's memory, not the probes'."""
    for name in functions:
        lambdas.delete_function(FunctionName=name)


def bench_warm_invoke_overhead(instance: Running, calls: int = 300) -> None:
    """Warm invoke p50/p90 through boto3 for a handler that logs and for one that is silent."""
    lambdas = boto3.client("lambda", endpoint_url=instance.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    sqs = boto3.client("sqs", endpoint_url=instance.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    sqs.list_queues()
    api = [timed(sqs.list_queues) for _ in range(calls)]
    print(f"{'floor: a non-Lambda API call through boto3 (SQS ListQueues) p50':<58} "
          f"{percentile(api, 0.5) * 1000:9.1f} ms")
    for label, handler in (("logging one line", "fidelity.log_one_line"), ("silent", "log_lines.silent")):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        module = handler.split(".", 1)[0] + ".py"
        lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
                                Code={"ZipFile": zip_handler(module)}, Timeout=30)
        lambdas.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()  # the cold start
        samples = [timed(lambda: lambdas.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())  # noqa: B023
                   for _ in range(calls)]
        report(f"warm invoke, handler {label}: p50 ({calls} calls)", percentile(samples, 0.5), 0.003)
        report(f"warm invoke, handler {label}: p90 ({calls} calls)", percentile(samples, 0.9), 0.003)
        remove_probes(lambdas, [name])


def bench_pipeline(instance: Running, scratch: Path) -> None:
    """Cold build+deploy, no-change redeploy, each function's cold start, per-item step times."""
    site = serve(port=0).start()
    try:
        parameters = stack_parameters(site.base_url.removeprefix("http://"))
        build_dir = scratch / "build"  # empty: a cold build (pip still has its wheel cache)
        cold = timed(lambda: deploy.deploy("local", "bench", parameters, say=lambda _: None,
                                           build_dir=build_dir))
        report("cold build + deploy of the whole stack", cold, 20.0)
        redeploys: list[deploy.DeployResult] = []
        again = timed(lambda: redeploys.append(deploy.deploy("local", "bench", parameters,
                                                             say=lambda _: None,
                                                             build_dir=build_dir)))
        # Only honest if nothing changed in between (an edit during the bench would show here).
        report(f"no-change redeploy ({'CHANGED!' if redeploys[0].changed else 'no changes'})",
               again, 3.0)
        layer = next((build_dir / "layers").glob("*.zip"))
        with zipfile.ZipFile(layer) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        print(f"{'shared layer size':<58} {layer.stat().st_size / 1e6:9.1f} MB zipped, "
              f"{unzipped / 1e6:.1f} MB unzipped (AWS limit 250 MB)")

        outputs = deploy.stack_outputs("local", "bench")
        lambdas = client("lambda")

        def invoke(step: str, event: dict[str, Any]) -> dict[str, Any]:
            response = lambdas.invoke(FunctionName=outputs[STEP[step].output],
                                      Payload=json.dumps(event).encode())
            body = dict(json.loads(response["Payload"].read()))
            if response.get("FunctionError"):
                raise RuntimeError(f"{step} failed: {body}")
            return body

        pages = [f"{site.base_url}/pages/{name}" for name in
                 ("garden", "library", "recette", "wanderung", "news", "rant", "flame")]
        step_times: dict[str, list[float]] = {step: [] for step in PIPELINE_STEPS}
        for index, url in enumerate(pages):
            payload: dict[str, Any] = {"run_id": f"bench-{index}", "url": url}
            for step in PIPELINE_STEPS:
                start = time.perf_counter()
                payload = invoke(step, payload)
                step_times[step].append(time.perf_counter() - start)
        for step in PIPELINE_STEPS:
            report(f"{step}: cold start as deployed (first invoke)", step_times[step][0], 0.8)
        for step in ("transformer", "moderator"):
            warm = step_times[step][1:]
            print(f"{step + ': per item, warm, ' + str(len(warm)) + ' sample pages (mean)':<58} "
                  f"{statistics.mean(warm) * 1000:9.1f} ms")
    finally:
        site.stop()


def bench_cold_start_again(instance: Running) -> None:
    """Each step's cold start on a new worker once its layer is extracted: compare with the first.

    Run after bench_pipeline, whose "cold start as deployed" lines are the first cold starts after
    a fresh deploy, with the same first page. If those are no slower than these, the first invoke
    after a deploy pays no layer extraction.
    """
    site = serve(port=0).start()
    try:
        outputs = deploy.deploy("local", "bench", stack_parameters(site.base_url.removeprefix("http://")),
                                say=lambda _: None).outputs
        lambdas = client("lambda")
        payload: dict[str, Any] = {"run_id": "bench-cold-again", "url": f"{site.base_url}/pages/garden"}
        for step in PIPELINE_STEPS:
            name = outputs[STEP[step].output]
            variables = lambdas.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
            # A changed environment retires the warm worker: the next invoke is a cold start.
            lambdas.update_function_configuration(FunctionName=name, Environment={
                "Variables": {**variables, "BENCH_COLD": uuid.uuid4().hex}})
            start = time.perf_counter()
            response = lambdas.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
            payload = json.loads(response["Payload"].read())
            cold = time.perf_counter() - start
            if response.get("FunctionError"):
                raise RuntimeError(f"{step} failed: {payload}")
            report(f"{step}: cold start again, layer already extracted", cold, 0.8)
    finally:
        site.stop()


def in_process_engine(instance: Running, outputs: dict[str, str], allowed_hosts: str) -> Any:
    """The orchestrator's engine calling the four handlers in this process: the baseline."""
    for folder in ("shared", *PIPELINE_STEPS):
        sys.path.insert(0, str(ROOT / "functions" / folder))
    os.environ.update(
        AWS_ENDPOINT_URL=instance.endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1", BUCKET_NAME=outputs["DataBucketName"],
        TABLE_NAME=outputs["RecordsTableName"], SCRAPER_ALLOWED_HOSTS=allowed_hosts,
        POWERTOOLS_TRACE_DISABLED="1", POWERTOOLS_SERVICE_NAME="in-process",
        POWERTOOLS_METRICS_NAMESPACE="Bench")
    import importlib

    from engines.alerts import FlaggedPageAlerts
    from engines.runs import RunsTable
    from orchestrator.engine import Engine
    from pipeline.alerts import SnsAlerts

    handlers = {step: importlib.import_module(f"{step}.handler").lambda_handler
                for step in PIPELINE_STEPS}

    def invoke(step: str, payload: dict[str, Any]) -> dict[str, Any]:
        return dict(handlers[step](payload, FakeLambdaContext(function_name="in-process")))

    return Engine(invoke=invoke, runs=RunsTable(outputs["RunsTableName"], client("dynamodb")),
                  alerts=FlaggedPageAlerts(SnsAlerts(outputs["AlertTopicArn"])))


def bench_engines(instance: Running, n: int = 50, concurrency: int = 8) -> None:
    """N URLs with 50 ms page latency: each engine's wall time against the in-process chain."""
    from orchestrator.engine import Budget

    site = serve(port=0).start()
    try:
        allowed = site.base_url.removeprefix("http://")
        outputs = deploy.deploy("local", "bench", stack_parameters(allowed),
                                say=lambda _: None).outputs
        urls = [f"{site.base_url}/faults/slow?delay=0.05&page={i}" for i in range(n)]

        def run_deployed(engine: str, count: int = n) -> float:
            request = run.run_request(urls[:count], concurrency)
            return timed(lambda: run.run(engine, "local", "bench", request, timeout_s=600))

        for engine_name in ENGINES:  # warm the workers of every function of every engine
            run_deployed(engine_name, count=concurrency)
        engine = in_process_engine(instance, outputs, allowed)
        engine.run(run.run_request(urls[:concurrency], concurrency),  # and the in-process imports
                   budget=Budget(lambda: 900_000, 60), continue_run=lambda request: None)
        in_process = timed(lambda: engine.run(run.run_request(urls, concurrency),
                                              budget=Budget(lambda: 900_000, 60),
                                              continue_run=lambda request: None))
        print(f"{f'in-process chain, {n} URLs, concurrency {concurrency}':<58} "
              f"{in_process * 1000:9.1f} ms")
        # An item's latency is its ``duration_ms``, measured the same way by both engines that
        # report it: from its admission (an orchestrator's worker takes it up; the choreography
        # puts its PageRequested, at most max_concurrency items in flight) to its end (the last
        # step answered; its terminal event put).
        latencies: dict[str, float] = {}
        for engine_name, goal in (("orchestrator", "1.1"), ("stepfunctions", "2.0"),
                                  ("choreography", "none set")):
            start = time.perf_counter()
            summary = run.run(engine_name, "local", "bench", run.run_request(urls, concurrency),
                              timeout_s=600)
            wall = time.perf_counter() - start
            assert not isinstance(summary, str)
            durations = [item.duration_ms for item in summary.items if item.duration_ms]
            if durations:
                latencies[engine_name] = statistics.mean(durations)
            latency = (f"{statistics.mean(durations):6.0f} ms (p50 {percentile(durations, 0.5):.0f}, "
                       f"p90 {percentile(durations, 0.9):.0f})" if durations else "   n/a")
            print(f"{f'{engine_name}, {n} URLs, concurrency {concurrency}':<58} "
                  f"{wall * 1000:9.1f} ms   ratio to in-process {wall / in_process:5.2f} "
                  f"(goal <= {goal}); per-item latency {latency}")
        if {"orchestrator", "choreography"} <= latencies.keys():
            ratio = latencies["choreography"] / latencies["orchestrator"]
            print(f"{'choreography / orchestrator per-item latency (mean)':<58} "
                  f"{ratio:9.2f}      ratio to goal {ratio / 2.0:5.2f} (goal <= 2.0)")
    finally:
        site.stop()


def cloud_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) the local cloud's process group has used, as (the cloud's own
    process, its function workers): each live process's own, and those of the children it has
    reaped (its children's times, the workers').

    Every process's children's times count, not only the cloud's: workers forked from a zygote
    are the zygote's children, so a worker stopped while it is measured (an idle one reaped)
    moves its CPU into the zygote's, where counting only the cloud's would lose it and make the
    difference of two readings too small, even negative."""
    ticks = os.sysconf("SC_CLK_TCK")
    own = workers = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the command name: state, ppid, pgrp, ... utime (12th), stime,
            # cutime, cstime.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pid:
                continue
            times = [int(field) / ticks for field in fields[11:15]]
            if int(entry.name) == pid:
                own += sum(times[:2])
                workers += sum(times[2:])
            else:
                workers += sum(times)
        except (OSError, ValueError, IndexError):
            continue  # a worker that ended meanwhile
    return own, workers


def cloud_memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS) in bytes of the local cloud's whole process tree (its process group, workers
    included), and how many processes it has."""
    rss = pss = processes = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the command name: state, ppid, pgrp, ...
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pid:
                continue
            processes += 1
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith(("Rss:", "Pss:")):
                    kib = int(line.split()[1]) * 1024
                    rss, pss = (rss + kib, pss) if line.startswith("Rss:") else (rss, pss + kib)
        except (OSError, ValueError, IndexError):
            continue  # a worker that ended meanwhile
    return rss, pss, processes


class PeakMemory:
    """Samples the local cloud's memory twice a second while in use; keeps the highest RSS and PSS."""

    def __init__(self, instance: Running) -> None:
        self.pid = instance.pid
        self.peak = (0, 0)
        self.processes = 0  # the most processes seen at once (MiniStack and its warm workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            rss, pss, processes = cloud_memory(self.pid)
            self.peak = (max(self.peak[0], rss), max(self.peak[1], pss))
            self.processes = max(self.processes, processes)

    def report(self, what: str, goal_gb: float = 1.5) -> None:
        # The ratio is on PSS, what the machine really holds: forked workers share their zygote's
        # pages, which RSS counts again in every one of them.
        rss, pss = self.peak
        print(f"{'local cloud peak memory, ' + what:<58} {rss / 1e9:6.2f} GB RSS, {pss / 1e9:.2f} GB PSS"
              f"   goal {goal_gb:.1f} GB   ratio {pss / 1e9 / goal_gb:5.2f}   ({self.processes} processes)")


def bench_large_run(instance: Running, n: int = 400, concurrency: int = 8) -> None:
    """One orchestrator run over N URLs: its wall time and the local cloud's peak memory meanwhile."""
    site = serve(port=0).start()
    try:
        allowed = site.base_url.removeprefix("http://")
        deploy.deploy("local", "bench", stack_parameters(allowed), say=lambda _: None)
        urls = [f"{site.base_url}/faults/slow?delay=0.05&page=large-{i}" for i in range(n)]
        with PeakMemory(instance) as memory:
            wall = timed(lambda: run.run("orchestrator", "local", "bench", run.run_request(urls, concurrency),
                                         timeout_s=1800))
        print(f"{f'orchestrator, {n} URLs, concurrency {concurrency}':<58} {wall * 1000:9.1f} ms")
        memory.report(f"{n}-URL orchestrator run")
    finally:
        site.stop()


def bench_scale(instance: Running, sizes: tuple[int, ...] = (1_000, 5_000),
                concurrency: int = 8) -> None:
    """Each engine at real size: wall time, items/s, peak memory, the growth from the smallest
    size to the largest (goal: linear, t(5000)/t(1000) <= 5.5) and the cost per 1,000 URLs."""
    from baton.ui.reader import Reader

    site = serve(port=0).start()
    try:
        allowed = site.base_url.removeprefix("http://")
        deploy.deploy("local", "bench", stack_parameters(allowed), say=lambda _: None)
        for engine in ENGINES:
            walls: dict[int, float] = {}
            for n in sizes:
                urls = [f"{site.base_url}/faults/slow?delay=0.05&scale={engine}-{n}-{i}"
                        for i in range(n)]
                request = run.run_request(urls, concurrency)
                try:
                    with PeakMemory(instance) as memory:
                        started = time.perf_counter()
                        summary = run.run(engine, "local", "bench", request, timeout_s=3600)
                        walls[n] = time.perf_counter() - started
                except BatonError as error:  # a run the engine refuses at its start
                    print(f"{f'{engine}, {n} URLs':<58} refused: {str(error).splitlines()[0]}")
                    continue
                assert not isinstance(summary, str)
                print(f"{f'{engine}, {n} URLs, concurrency {concurrency}':<58} "
                      f"{walls[n] * 1000:9.1f} ms   {n / walls[n]:6.1f} items/s   "
                      f"{summary.succeeded} stored, {summary.failed} failed; peak "
                      f"{memory.peak[0] / 1e9:.2f} GB RSS")
                if n == sizes[0]:
                    reader = Reader("local", "bench")
                    priced = reader.cost(reader.run(summary.run_id))
                    print(f"{f'{engine}: estimated AWS cost per 1,000 URLs':<58} "
                          f"${priced.total_usd / n * 1000:9.4f}")
            if len(walls) == len(sizes) > 1:
                small, large = sizes[0], sizes[-1]
                growth = walls[large] / walls[small]
                goal = large / small * 1.1
                print(f"{f'{engine}: growth t({large})/t({small})':<58} {growth:9.2f}      "
                      f"goal {goal:7.2f}   ratio {growth / goal:5.2f}")
    finally:
        site.stop()


def bench_idle_memory(instance: Running, wait_s: float = 120.0) -> None:
    """The local cloud's memory after it has been idle for a while (extra workers reaped)."""
    time.sleep(wait_s)
    rss, pss, processes = cloud_memory(instance.pid)
    print(f"{f'local cloud memory idle after {wait_s:.0f} s':<58} {rss / 1e9:6.2f} GB RSS, "
          f"{pss / 1e9:.2f} GB PSS ({processes} processes)")


def bench_monitor(n: int = 50) -> None:
    """A monitor run over N first-time pages, then over the same N pages unchanged (304s)."""
    from baton import monitoring
    from baton.watch import Watch, watchlist_table

    site = serve(port=0).start()
    try:
        allowed = site.base_url.removeprefix("http://")
        deploy.deploy("local", "bench", stack_parameters(allowed), say=lambda _: None)
        watchlist = Path(tempfile.mkdtemp(prefix="baton-bench-")) / "watchlist.txt"
        # Distinct pages of the site's content kinds, each answering 304 to a matching GET.
        pages = ("garden", "library", "recette", "wanderung", "news")
        watchlist.write_text("".join(f"{site.base_url}/pages/{pages[i % len(pages)]}?copy={i}\n"
                                     for i in range(n)))
        Watch(watchlist_table("local", "bench")).import_file(watchlist)
        runs: list[Any] = []
        first = timed(lambda: runs.append(monitoring.run_once("local", "bench", "orchestrator")))
        again = timed(lambda: runs.append(monitoring.run_once("local", "bench", "orchestrator")))
        print(f"{f'monitor run, {n} first-time pages':<58} {first * 1000:9.1f} ms   "
              f"({dict(runs[0].counts)})")
        print(f"{f'monitor run, {n} unchanged pages (conditional GET)':<58} {again * 1000:9.1f} ms   "
              f"ratio to first-time {again / first:5.2f} ({dict(runs[1].counts)})")
    finally:
        site.stop()


class AwsCalls:
    """Counts the AWS calls this process makes through any botocore client, by service and
    operation, with the time spent in them: what an item costs when its steps run in process."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> AwsCalls:
        from botocore.client import BaseClient

        self._original = original = BaseClient._make_api_call

        def counted(client: Any, operation: str, params: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                name = f"{client.meta.service_model.service_name}.{operation}"
                with self._lock:
                    self.counts[name] += 1
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        BaseClient._make_api_call = counted
        return self

    def __exit__(self, *exc_info: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original


def scraper_politeness(variables: dict[str, str]) -> None:
    """Set the in-process scraper's environment and drop what it built from the previous one."""
    import scraper.handler
    import scraper.settings

    os.environ.update(variables)
    for name in ("SCRAPER_SLOTS_TABLE", "SCRAPER_HOST_CONCURRENCY"):
        if not variables.get(name):
            os.environ.pop(name, None)
    scraper.settings.get_settings.cache_clear()
    scraper.handler.fetcher.cache_clear()
    scraper.handler.politeness.cache_clear()


def bench_sweep_calls(instance: Running, outputs: dict[str, str], base_url: str,
                      n: int = 200, concurrency: int = 8) -> None:
    """The AWS calls of one unchanged page, by service and operation: N pages run twice in this
    process (the orchestrator's engine calling the handlers, the scraper with the deployed
    stack's host slots), the second time with the first run's validators, so each is a 304."""
    from orchestrator.engine import Budget
    from pipeline.models import Validators

    allowed = base_url.removeprefix("http://")
    engine = in_process_engine(instance, outputs, allowed)
    scraper_politeness({"SCRAPER_SLOTS_TABLE": outputs["HostSlotsTableName"],
                        "SCRAPER_HOST_CONCURRENCY": UNLIMITED_HOST})
    try:
        pages = ("garden", "library", "recette", "wanderung", "news")
        urls = [f"{base_url}/pages/{pages[i % len(pages)]}?calls={i}" for i in range(n)]
        budget = Budget(lambda: 900_000, 60)
        # The handlers' metrics lines are printed: keep them off the report.
        with contextlib.redirect_stdout(io.StringIO()):
            first = engine.run(run.run_request(urls, concurrency), budget=budget,
                               continue_run=lambda request: None)
            previous = {item.url: Validators(etag=item.etag, last_modified=item.last_modified)
                        for item in first.items if item.etag or item.last_modified}
            request = run.run_request(urls, concurrency).model_copy(update={"previous": previous})
            with AwsCalls() as calls:
                wall = timed(lambda: engine.run(request, budget=budget,
                                                continue_run=lambda request: None))
    finally:
        scraper_politeness({})
    per_item = sum(calls.counts.values()) / n
    print(f"{f'AWS calls per unchanged page, in process ({n} pages, 304)':<58} {per_item:9.2f}"
          f"      + the scraper's invoke when deployed; {wall / n * 1000:.1f} ms a page "
          f"at concurrency {concurrency}")
    for name, count in calls.counts.most_common():
        print(f"{'  ' + name:<58} {count / n:9.2f}      "
              f"{calls.seconds[name] / count * 1000:6.2f} ms a call")


def bench_sweep(instance: Running, n: int = 2_000, concurrencies: tuple[int, ...] = (8,),
                goal_10k_s: float = 60.0) -> None:
    """A monitor sweep of N unchanged pages (each a conditional GET answered 304, the item ending
    after the scraper), extrapolated to 10,000 (goal: 60 s on 2 cores); where its time goes."""
    from baton import monitoring
    from baton.watch import Watch, watchlist_table
    from engines.runs import RunsTable
    from pipeline.monitor_models import CheckState

    site = serve(port=0).start()
    try:
        allowed = site.base_url.removeprefix("http://")
        outputs = deploy.deploy("local", "bench", stack_parameters(allowed),
                                say=lambda _: None).outputs
        watch = Watch(watchlist_table("local", "bench"))
        watch.remove([entry.url for entry in watch.entries()])  # this part's pages only
        watchlist = Path(tempfile.mkdtemp(prefix="baton-bench-")) / "watchlist.txt"
        # N distinct URLs of the site's content pages, each with an ETag and a Last-Modified.
        pages = ("garden", "library", "recette", "wanderung", "news")
        watchlist.write_text("".join(f"{site.base_url}/pages/{pages[i % len(pages)]}?sweep={i}\n"
                                     for i in range(n)))
        watch.import_file(watchlist)
        # Every page new: a run that may outlive a firing, so fired until one has settled it
        # (a firing that returns "done" leaves no run going behind it).
        first = monitoring.run_once("local", "bench", "orchestrator")
        while first.status not in ("done", "failed"):
            time.sleep(5)
            first = monitoring.run_once("local", "bench", "orchestrator")
        runs = RunsTable(outputs["RunsTableName"], client("dynamodb", "local"))
        for concurrency in concurrencies:
            monitoring.set_variables("local", "bench",
                                     {"MONITOR_MAX_CONCURRENCY": str(concurrency)})
            # No memory sampling here: reading 70 processes' page tables twice a second costs
            # this process ~2 ms of CPU a page, which would count as the sample site's.
            (cloud_before, workers_before), own_before = cloud_cpu(instance.pid), time.process_time()
            started = time.perf_counter()
            sweep = monitoring.run_once("local", "bench", "orchestrator")
            wall = time.perf_counter() - started
            # CPU time, unlike wall time, hardly depends on what else the shared machine
            # runs: it says what the sweep costs, and what it would take on idle cores.
            cloud_after, workers_after = cloud_cpu(instance.pid)
            # The cloud's own process (HTTP, the emulated services, the invoke path) apart from
            # its function workers (the orchestrator, the scrapers, the monitor).
            own_s, workers_s = cloud_after - cloud_before, workers_after - workers_before
            cloud_s = own_s + workers_s
            site_s = time.process_time() - own_before  # the sample site serves from here
            if sweep.status != "done" or sweep.counts.get(CheckState.UNCHANGED) != n:
                print(f"{f'monitor sweep, {n} unchanged pages':<58} did not sweep: first "
                      f"{first.status} {dict(first.counts)}, sweep {sweep.status} "
                      f"{dict(sweep.counts)} {sweep.error or ''}")
                return
            summary = runs.summary(sweep.run_id)
            assert summary and summary.started_at and summary.ended_at and sweep.ended_at
            # Where the time went: the pipeline run (per item: its runs-table writes around
            # the scraper's invoke), then the monitor noticing its end and reading its items,
            # then the monitor's own checks and writes (its checks are stamped when that began).
            pipeline = (summary.ended_at - summary.started_at).total_seconds()
            checked_at = min(check.current.checked_at
                             for check in monitoring.monitor_table("local", "bench").run_checks(
                                 sweep.run_id) if check.current is not None)
            noticed = (checked_at - summary.ended_at).total_seconds()
            settle = (sweep.ended_at - checked_at).total_seconds()
            item_ms = statistics.median(item.duration_ms for item in summary.items)
            scraper_ms = statistics.median(
                (step.ended_at - step.started_at).total_seconds() * 1000
                for _, step in runs.item_steps(sweep.run_id) if step.step == "scraper")
            print(f"{f'monitor sweep, {n} unchanged pages (304), concurrency {concurrency}':<58} "
                  f"{wall * 1000:9.1f} ms   {n / wall:6.1f} pages/s")
            print(f"{'  of which: the pipeline run':<58} {pipeline * 1000:9.1f} ms   item p50 "
                  f"{item_ms:.1f} ms, its scraper step p50 {scraper_ms:.1f} ms")
            print(f"{'  its end noticed and its items read by the monitor':<58} "
                  f"{noticed * 1000:9.1f} ms")
            print(f"{'  the monitor checks, writes states and checks':<58} "
                  f"{settle * 1000:9.1f} ms")
            report(f"monitor sweep extrapolated to 10,000 unchanged pages, concurrency "
                   f"{concurrency}", wall * 10_000 / n, goal_10k_s)
            cpu_ms = (cloud_s + site_s) / n * 1000
            print(f"{'  CPU per unchanged page (local cloud + sample site)':<58} {cpu_ms:9.1f} ms"
                  f"   (cloud {own_s / n * 1000:.1f} + functions {workers_s / n * 1000:.1f} + site "
                  f"{site_s / n * 1000:.1f} ms; load average {os.getloadavg()[0]:.1f})")
            report(f"  10,000 pages' CPU spread over {os.cpu_count()} idle cores",
                   cpu_ms / 1000 * 10_000 / (os.cpu_count() or 1), goal_10k_s)
        bench_sweep_calls(instance, outputs, site.base_url)
    finally:
        site.stop()


def main() -> None:
    print(f"baton bench: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; "
          "ratio = measured / goal (below 1.0 meets it)")
    with tempfile.TemporaryDirectory(prefix="baton-bench-") as scratch:
        state_root = Path(scratch)
        bench_start(state_root)
        cloud = LocalCloud(state_dir=state_root / "invokes")
        instance, _ = cloud.up(port=free_port())
        os.environ["BATON_PORT"] = str(instance.port)  # baton's own clients target this cloud
        only = {part for part in os.environ.get("BATON_BENCH_ONLY", "").split(",") if part}
        wanted = (lambda part: not only or part in only)  # noqa: E731
        try:
            if wanted("invokes"):
                bench_invokes(instance)
                bench_warm_invoke_overhead(instance)
            if wanted("pipeline"):
                bench_pipeline(instance, state_root)
                bench_cold_start_again(instance)
            if wanted("engines"):
                with PeakMemory(instance) as memory:
                    bench_engines(instance)
                memory.report("50-URL engine runs")
                bench_large_run(instance)
            if wanted("idle"):
                bench_idle_memory(instance)
            if wanted("monitor"):
                bench_monitor()
            if wanted("sweep"):
                concurrencies = os.environ.get("BATON_BENCH_SWEEP_CONCURRENCY", "8")
                bench_sweep(instance, int(os.environ.get("BATON_BENCH_SWEEP", "2000")),
                            tuple(int(each) for each in concurrencies.split(",")))
            if wanted("scale"):
                sizes = os.environ.get("BATON_BENCH_SIZES", "1000,5000")
                bench_scale(instance, tuple(int(size) for size in sizes.split(",")))
        finally:
            cloud.down()


if __name__ == "__main__":
    main()
