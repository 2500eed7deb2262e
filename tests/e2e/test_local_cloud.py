"""`baton up/down/status` against real MiniStack processes, each test with its own state dir."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from baton import localcloud
from baton.errors import BatonError
from baton.localcloud import LocalCloud, Running
from baton.localcloud.warmpool import MIN_IDLE_S, WORKERS_PER_SLOT
from baton.site import serve
from tests.e2e.conftest import ROLE, free_port, zip_handler


def baton(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATON_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "baton.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    LocalCloud(state_dir=tmp_path).down()  # never leave a process behind, pass or fail


def s3(port: int) -> Any:
    return boto3.client("s3", endpoint_url=localcloud.endpoint_for(port), region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_up_status_down_round_trip(state_dir):
    port = free_port()

    started = baton(state_dir, "up", "--port", str(port))
    status = baton(state_dir, "status")
    stopped = baton(state_dir, "down")
    after = baton(state_dir, "status")

    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    assert status.returncode == 0 and "MiniStack 1.5.33" in status.stdout
    assert stopped.returncode == 0 and "Stopped" in stopped.stdout
    assert after.returncode == 3 and "not running" in after.stdout


def test_up_when_already_running_says_so_and_succeeds(state_dir):
    port = free_port()
    baton(state_dir, "up", "--port", str(port))

    again = baton(state_dir, "up", "--port", str(port))

    assert again.returncode == 0
    assert "already running" in again.stdout


def test_down_when_nothing_runs_is_a_no_op(state_dir):
    result = baton(state_dir, "down")

    assert result.returncode == 0
    assert "not running" in result.stdout


def test_listens_on_loopback_only(state_dir):
    port = free_port()
    baton(state_dir, "up", "--port", str(port))

    sockets = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    ours = [s[1] for s in sockets if s[1].endswith(f":{port:04X}") and s[3] == "0A"]  # LISTEN

    assert ours == [f"0100007F:{port:04X}"]  # 127.0.0.1, nothing on 0.0.0.0


def test_up_replaces_a_stale_record_of_a_live_process_that_is_not_the_cloud(state_dir):
    port = free_port()
    other = subprocess.Popen(["sleep", "120"])  # alive, with a pid the record now names
    try:
        (state_dir / "ministack.pid").write_text(json.dumps({"pid": other.pid, "port": port}))

        started = baton(state_dir, "up", "--port", str(port))
        status = baton(state_dir, "status")

        assert started.returncode == 0, started.stderr
        assert f"Removed a stale local cloud record: pid {other.pid} is now 'sleep 120'" in started.stderr
        assert "is up at" in started.stdout
        assert localcloud.probe_health(port) is not None
        assert status.returncode == 0 and str(other.pid) not in status.stdout
        assert other.poll() is None  # the unrelated process was left alone
    finally:
        other.kill()
        other.wait()


def test_up_restarts_a_cloud_that_does_not_answer_at_its_recorded_port(state_dir):
    cloud = LocalCloud(state_dir=state_dir)
    old, _ = cloud.up(port=free_port())
    recorded = free_port()  # the record now names a port where nothing answers
    cloud.pid_file.write_text(json.dumps({"pid": old.pid, "port": recorded}))

    started = baton(state_dir, "up", "--port", str(recorded))

    assert started.returncode == 0, started.stderr
    assert f"The local cloud (pid {old.pid}) does not answer on port {recorded}; restarting" in started.stderr
    assert localcloud.probe_health(recorded) is not None
    assert localcloud.probe_health(old.port) is None


class FakeLocalStack(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"edition": "community", "version": "4.9.2", "services": {}}).encode()
        if self.path != "/_localstack/health":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_port_taken_by_localstack_is_named_and_fails(state_dir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLocalStack)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = baton(state_dir, "up", "--port", str(server.server_port))
    finally:
        server.shutdown()

    assert result.returncode == 1
    assert "LocalStack community 4.9.2" in result.stderr


def test_start_failure_shows_log_tail_and_path(state_dir, monkeypatch, tmp_path):
    broken = tmp_path / "broken_launcher.py"
    broken.write_text("import sys\nprint('launcher exploded: bad config')\nsys.exit(3)\n")
    monkeypatch.setattr(localcloud, "LAUNCHER", broken)

    with pytest.raises(BatonError) as failure:
        LocalCloud(state_dir=state_dir).up(port=free_port())

    message = str(failure.value)
    assert "exited during start (code 3)" in message
    assert "launcher exploded: bad config" in message
    assert str(state_dir / "ministack.log") in message


def test_persist_keeps_state_across_down_and_up(state_dir):
    port = free_port()
    cloud = LocalCloud(state_dir=state_dir)
    cloud.up(port=port, persist=True)
    s3(port).create_bucket(Bucket="kept-bucket")
    s3(port).put_object(Bucket="kept-bucket", Key="k", Body=b"v")
    cloud.down()

    cloud.up(port=port, persist=True)

    assert s3(port).get_object(Bucket="kept-bucket", Key="k")["Body"].read() == b"v"


def saved_state_mentions(state_dir: Path, service: str, text: str, timeout_s: float = 20.0) -> bool:
    """Wait for the periodic save to write ``text`` into the service's state file."""
    path = state_dir / "data" / f"{service}.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_persist_survives_kill_9(state_dir):
    port = free_port()
    cloud = LocalCloud(state_dir=state_dir)
    first, _ = cloud.up(port=port, persist=True)
    dynamodb = boto3.client("dynamodb", endpoint_url=first.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
    dynamodb.create_table(TableName="records", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    for index in range(5):
        dynamodb.put_item(TableName="records", Item={"id": {"S": f"record-{index}"}})
    s3(port).create_bucket(Bucket="crash-bucket")
    s3(port).put_object(Bucket="crash-bucket", Key="k", Body=b"v")
    lambdas = lambda_client(first)
    create_layer_reader(lambdas)
    saved = (saved_state_mentions(state_dir, "dynamodb", "record-4")
             and saved_state_mentions(state_dir, "lambda", "reads-layer"))

    os.killpg(first.pid, signal.SIGKILL)  # no graceful shutdown, no save on the way out
    os.waitpid(first.pid, 0)
    second, started = cloud.up(port=port, persist=True)

    assert saved, "the periodic save never wrote the records"
    assert started and second.pid != first.pid
    items = dynamodb.scan(TableName="records")["Items"]
    assert sorted(item["id"]["S"] for item in items) == [f"record-{index}" for index in range(5)]
    assert s3(port).get_object(Bucket="crash-bucket", Key="k")["Body"].read() == b"v"
    assert "failed to load" not in cloud.log_file.read_text().lower()
    extracted = state_dir / "tmp" / "baton-layers"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(extracted.glob("*/python/baton_layer_probe.py")):
        time.sleep(0.2)
    assert list(extracted.glob("*/python/baton_layer_probe.py")), "the restored layer was not extracted"
    assert json.loads(lambdas.invoke(FunctionName="reads-layer", Payload=b"{}")["Payload"].read()) == {
        "value": "from the layer"}


def test_persist_keeps_waiting_async_events_across_down_and_up(state_dir, tmp_path):
    port = free_port()
    cloud = LocalCloud(state_dir=state_dir)
    first, _ = cloud.up(port=port, persist=True, concurrency=2)
    lambdas = lambda_client(first)
    lambdas.create_function(FunctionName="marks-slowly", Runtime="python3.11", Role=ROLE,
                            Handler="fidelity.leave_a_mark", Code={"ZipFile": zip_handler("fidelity.py")},
                            Timeout=30)
    lambdas.put_function_concurrency(FunctionName="marks-slowly", ReservedConcurrentExecutions=1)
    marks = tmp_path / "marks"
    marks.mkdir()
    names = [f"event-{index}" for index in range(8)]
    for mark in names:  # one at a time, 0.5 s each: most still wait when the cloud stops
        lambdas.invoke(FunctionName="marks-slowly", InvocationType="Event",
                       Payload=json.dumps({"folder": str(marks), "name": mark}).encode())
    cloud.down()
    marked_before = len(list(marks.iterdir()))

    cloud.up(port=port, persist=True, concurrency=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(marks.iterdir())) < len(names):
        time.sleep(0.2)

    assert marked_before < len(names), "every event ran before the stop: the test proved nothing"
    assert sorted(path.name for path in marks.iterdir()) == names


def test_without_persist_state_starts_empty(state_dir):
    port = free_port()
    cloud = LocalCloud(state_dir=state_dir)
    cloud.up(port=port)
    s3(port).create_bucket(Bucket="gone-bucket")
    cloud.down()

    cloud.up(port=port)

    assert s3(port).list_buckets()["Buckets"] == []


# -- closed to web pages and DNS rebinding ------------------------------------------------------

CONSOLE = "http://console.example"  # the one origin the guarded cloud below allows
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def guarded_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("guarded-cloud"))
    os.environ["BATON_ALLOWED_ORIGINS"] = CONSOLE
    try:
        instance, _ = cloud.up(port=free_port())
    finally:
        del os.environ["BATON_ALLOWED_ORIGINS"]
    yield instance
    cloud.down()


def request(port: int, method: str, path: str, headers: dict[str, str],
            body: str | None = None) -> tuple[int, dict[str, str], str]:
    """Send one raw request (its Host header as given, else the loopback address)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Host": f"127.0.0.1:{port}", **headers})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def create_queue(port: int, name: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """An SQS CreateQueue as a web page could send it (a form-encoded POST)."""
    return request(port, "POST", "/", {"Content-Type": "application/x-www-form-urlencoded", **headers},
                   f"Action=CreateQueue&QueueName={name}&Version=2012-11-05")


def sqs(port: int) -> Any:
    return boto3.client("sqs", endpoint_url=localcloud.endpoint_for(port), region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def queue_names(port: int) -> list[str]:
    return [url.rsplit("/", 1)[-1] for url in sqs(port).list_queues().get("QueueUrls", [])]


def test_cloud_refuses_a_web_page_origin_before_acting(guarded_cloud):
    status, headers, body = create_queue(guarded_cloud.port, "from-evil-page", {"Origin": EVIL})

    assert status == 403
    assert EVIL in body and "access-control-allow-origin" not in headers
    assert "from-evil-page" not in queue_names(guarded_cloud.port)


def test_cloud_refuses_a_preflight_from_a_web_page_origin(guarded_cloud):
    status, headers, body = request(guarded_cloud.port, "OPTIONS", "/2015-03-31/functions", {
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})

    assert status == 403
    assert EVIL in body and "access-control-allow-origin" not in headers


def test_cloud_refuses_a_rebinding_host(guarded_cloud):
    status, _, body = create_queue(guarded_cloud.port, "from-rebinding", {"Host": "evil.example"})

    assert status == 403 and "evil.example" in body
    assert "from-rebinding" not in queue_names(guarded_cloud.port)


def test_cloud_serves_an_allowed_origin_and_echoes_it(guarded_cloud):
    preflight, preflight_headers, _ = request(guarded_cloud.port, "OPTIONS", "/", {
        "Origin": CONSOLE, "Access-Control-Request-Method": "POST"})
    status, headers, _ = create_queue(guarded_cloud.port, "from-console", {"Origin": CONSOLE})

    assert preflight == 200 and preflight_headers["access-control-allow-origin"] == CONSOLE
    assert status == 200 and headers["access-control-allow-origin"] == CONSOLE
    assert "from-console" in queue_names(guarded_cloud.port)


def test_cloud_sends_no_wildcard_origin_and_boto3_still_works(guarded_cloud):
    sqs(guarded_cloud.port).create_queue(QueueName="from-boto3")
    status, headers, _ = request(guarded_cloud.port, "GET", "/_ministack/health", {})

    assert "from-boto3" in queue_names(guarded_cloud.port)
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("BATON_ALLOWED_ORIGINS", CONSOLE)
    server = serve(port=0).start()
    yield server.server_address[1]
    server.stop()


def site_down_statuses(port: int) -> dict[str, Any]:
    _, _, body = request(port, "GET", "/_control/state", {})
    return {name: page["down_status"] for name, page in json.loads(body)["pages"].items()}


def test_site_refuses_a_web_page_origin_simple_and_preflight(site):
    before = site_down_statuses(site)
    page = next(iter(before))

    simple, simple_headers, body = request(site, "POST", f"/_control/down?page={page}", {"Origin": EVIL})
    preflight, preflight_headers, _ = request(site, "OPTIONS", f"/_control/down?page={page}", {
        "Origin": EVIL, "Access-Control-Request-Method": "POST"})

    assert simple == 403 and EVIL in body and "access-control-allow-origin" not in simple_headers
    assert preflight == 403 and "access-control-allow-origin" not in preflight_headers
    assert site_down_statuses(site) == before


def test_site_refuses_a_rebinding_host(site):
    status, _, body = request(site, "GET", "/", {"Host": "evil.example"})

    assert status == 403 and "evil.example" in body


def test_site_serves_loopback_and_an_allowed_origin(site):
    plain, plain_headers, _ = request(site, "GET", "/", {})
    allowed, allowed_headers, _ = request(site, "GET", "/", {"Origin": CONSOLE})
    preflight, preflight_headers, _ = request(site, "OPTIONS", "/", {
        "Origin": CONSOLE, "Access-Control-Request-Method": "GET"})

    assert plain == 200 and "access-control-allow-origin" not in plain_headers
    assert allowed == 200 and allowed_headers["access-control-allow-origin"] == CONSOLE
    assert preflight == 204 and preflight_headers["access-control-allow-origin"] == CONSOLE


# -- layers ---------------------------------------------------------------------------------------


def lambda_client(instance: Running, attempts: int = 3) -> Any:
    return boto3.client("lambda", endpoint_url=instance.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": attempts}))


def publish_probe_layer(lambdas: Any) -> str:
    """A layer holding one module, baton_layer_probe; its version ARN."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/baton_layer_probe.py", "VALUE = 'from the layer'\n")
    published = lambdas.publish_layer_version(LayerName="probe", Content={"ZipFile": layer.getvalue()})
    return str(published["LayerVersionArn"])


def create_layer_reader(lambdas: Any, layer_arn: str | None = None) -> None:
    """The function "reads-layer", which returns a value only the probe layer provides."""
    lambdas.create_function(FunctionName="reads-layer", Runtime="python3.11", Role=ROLE,
                            Handler="layer_module.handler", Code={"ZipFile": zip_handler("layer_module.py")},
                            Layers=[layer_arn or publish_probe_layer(lambdas)])


def test_a_layer_is_extracted_when_published_and_functions_import_from_it(state_dir):
    cloud = LocalCloud(state_dir=state_dir)
    instance, _ = cloud.up(port=free_port())
    lambdas = lambda_client(instance)

    arn = publish_probe_layer(lambdas)
    extracted = list((state_dir / "tmp" / "baton-layers").glob("*/python/baton_layer_probe.py"))
    create_layer_reader(lambdas, arn)
    response = lambdas.invoke(FunctionName="reads-layer", Payload=b"{}")

    assert len(extracted) == 1  # before any function used it
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"value": "from the layer"}


# -- bounded concurrency ----------------------------------------------------------------------------

LIMIT = 2


@pytest.fixture(scope="module")
def limited_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("limited-cloud"))
    settings = {"BATON_LAMBDA_CONCURRENCY": str(LIMIT), "BATON_WORKER_IDLE_S": "2"}
    os.environ.update(settings)
    try:
        instance, _ = cloud.up(port=free_port())
    finally:
        for name in settings:
            del os.environ[name]
    yield instance
    cloud.down()


def create_function(lambdas: Any, handler: str, module: str) -> str:
    name = f"limited-{handler.replace('.', '-').replace('_', '-')}"
    lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
                            Code={"ZipFile": zip_handler(module)}, Timeout=30)
    return name


def invoke_outcome(lambdas: Any, name: str, event: dict[str, Any]) -> str:
    try:
        response = lambdas.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error'].get('Message', '')}"
    return "FunctionError" if response.get("FunctionError") else "ok"


def worker_processes(function: str) -> int:
    """The warm worker processes of ``function`` (each runs in a folder named after it: its script
    is there when spawned, its working directory in both cases, forked or spawned)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                arguments = (entry / "cmdline").read_bytes()
                folder = os.readlink(entry / "cwd").encode()
            except OSError:
                continue
            count += any(f"ministack-lambda-{function}-".encode() in text for text in (arguments, folder))
    return count


def test_sync_invokes_beyond_the_limit_are_throttled(limited_cloud):
    lambdas = lambda_client(limited_cloud, attempts=1)  # boto3 would retry a throttle itself
    name = create_function(lambdas, "fidelity.sleep_past_timeout", "fidelity.py")

    with ThreadPoolExecutor(max_workers=LIMIT + 3) as pool:
        outcomes = list(pool.map(lambda _: invoke_outcome(lambdas, name, {"seconds": 2}), range(LIMIT + 3)))

    throttled = [o for o in outcomes if o.startswith("TooManyRequestsException")]
    assert throttled and all("concurrency" in o for o in throttled), outcomes
    assert 1 <= outcomes.count("ok") <= LIMIT, outcomes


def leave_marks(lambdas: Any, name: str, folder: Path, marks: list[str]) -> None:
    """Invoke ``name`` asynchronously once per mark, then wait (60 s at most) for the files."""
    for mark in marks:
        lambdas.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"folder": str(folder), "name": mark}).encode())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(folder.iterdir())) < len(marks):
        time.sleep(0.2)

def test_async_events_beyond_the_limit_wait_and_all_run(limited_cloud, tmp_path):
    lambdas = lambda_client(limited_cloud)
    name = create_function(lambdas, "fidelity.leave_a_mark", "fidelity.py")
    names = [f"event-{index}" for index in range(LIMIT * 3)]

    leave_marks(lambdas, name, tmp_path, names)

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names)


def test_extra_idle_workers_are_stopped_and_one_stays_warm(limited_cloud):
    lambdas = lambda_client(limited_cloud)
    name = create_function(lambdas, "fidelity.count_concurrent", "fidelity.py")
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"baton-count-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    with ThreadPoolExecutor(max_workers=LIMIT) as pool:
        list(pool.map(lambda _: invoke_outcome(lambdas, name, {"folder": str(folder)}), range(LIMIT)))
    during = worker_processes(name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker_processes(name) > 1:
        time.sleep(0.5)

    assert during == LIMIT
    assert worker_processes(name) == 1


def test_async_events_of_a_function_start_in_the_order_they_came(limited_cloud, tmp_path):
    lambdas = lambda_client(limited_cloud)
    name = "ordered-marks"
    lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                            Handler="fidelity.leave_a_mark", Code={"ZipFile": zip_handler("fidelity.py")},
                            Timeout=30)
    lambdas.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    names = [f"event-{index}" for index in range(5)]

    leave_marks(lambdas, name, tmp_path, names)

    # One at a time (reserved concurrency 1), each taking 0.5 s: written in the order started.
    assert [path.name for path in sorted(tmp_path.iterdir(), key=lambda p: p.stat().st_mtime_ns)] == names


def test_warm_workers_beyond_the_cap_are_those_of_the_function_used_longest_ago(limited_cloud, tmp_path):
    lambdas = lambda_client(limited_cloud)
    cap = LIMIT * WORKERS_PER_SLOT
    names = [f"capped-{index}" for index in range(cap + 1)]
    for name in names:
        lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                Handler="fidelity.log_one_line", Code={"ZipFile": zip_handler("fidelity.py")},
                                Timeout=30)
    slow = "capped-busy"
    lambdas.create_function(FunctionName=slow, Runtime="python3.11", Role=ROLE,
                            Handler="fidelity.leave_a_mark", Code={"ZipFile": zip_handler("fidelity.py")},
                            Timeout=30)

    for name in names[:cap]:
        assert invoke_outcome(lambdas, name, {}) == "ok"
    time.sleep(MIN_IDLE_S + 0.5)  # only the workers of functions unused that long make room
    assert invoke_outcome(lambdas, names[cap], {}) == "ok"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and worker_processes(names[0]) > 0:
        time.sleep(0.2)
    after_all = [worker_processes(name) for name in names]
    # While the slow one runs (its worker in use), the first function starts again: the running
    # worker stays, an idle one goes.
    time.sleep(MIN_IDLE_S + 0.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(invoke_outcome, lambdas, slow, {"folder": str(tmp_path), "name": "done"})
        while worker_processes(slow) == 0 and not running.done():
            time.sleep(0.05)
        assert invoke_outcome(lambdas, names[0], {}) == "ok"
        assert running.result(timeout=30) == "ok"

    assert after_all == [0] + [1] * cap  # at most the cap warm: the function used longest ago went
    assert (tmp_path / "done").exists()


# -- workers forked from a zygote -------------------------------------------------------------------

# Reports what a Lambda handler sees of its own environment and of its module-level state.
FORK_PROBE = '''
import logging, os, time
from aws_lambda_powertools import Logger

logger = Logger()
INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    time.sleep(event.get("sleep", 0))
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as parent:
        parent_command = parent.read().decode(errors="replace")
    return {"who": os.environ.get("WHO"), "service": logger.service,
            "level": logging.getLevelName(logger.log_level), "invocations": INVOCATIONS,
            "pid": os.getpid(), "parent": parent_command, "cwd": os.getcwd()}
'''


@pytest.fixture(scope="module")
def probe_layer_zip() -> bytes:
    """A layer with Powertools and pydantic, built by baton's layer builder."""
    from baton.build import build_layer

    return build_layer(Path(__file__).parent / "probe_layer", Path("build")).read_bytes()


def publish_fork_probe_layer(instance: Running, layer_zip: bytes) -> str:
    published = lambda_client(instance).publish_layer_version(LayerName="fork-probe",
                                                              Content={"ZipFile": layer_zip})
    return str(published["LayerVersionArn"])


@pytest.fixture(scope="module")
def forking_cloud(tmp_path_factory: pytest.TempPathFactory,
                  probe_layer_zip: bytes) -> Iterator[tuple[Running, str]]:
    """A local cloud (the fork server on, its default) and a Powertools + pydantic layer in it."""
    cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("forking-cloud"))
    instance, _ = cloud.up(port=free_port())
    yield instance, publish_fork_probe_layer(instance, probe_layer_zip)
    cloud.down()


def create_fork_probe(lambdas: Any, layer: str, timeout: int = 30, **env: str) -> str:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("fork_probe.py", FORK_PROBE)
    name = f"fork-probe-{uuid.uuid4().hex[:8]}"
    lambdas.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="fork_probe.handler",
                            Code={"ZipFile": code.getvalue()}, Layers=[layer], Timeout=timeout,
                            Environment={"Variables": env})
    return name


def invoke_probe(lambdas: Any, name: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
    response = lambdas.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    payload: dict[str, Any] = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        return {"error": payload}
    return payload


def test_forked_workers_see_their_own_function_settings_and_state(forking_cloud):
    instance, layer = forking_cloud
    lambdas = lambda_client(instance)
    first = create_fork_probe(lambdas, layer, WHO="first", POWERTOOLS_SERVICE_NAME="svc-first",
                              POWERTOOLS_LOG_LEVEL="DEBUG")
    second = create_fork_probe(lambdas, layer, WHO="second", POWERTOOLS_SERVICE_NAME="svc-second",
                               POWERTOOLS_LOG_LEVEL="ERROR")

    one, again = invoke_probe(lambdas, first), invoke_probe(lambdas, first)
    other = invoke_probe(lambdas, second)

    assert "forkserver.py" in one["parent"] and "forkserver.py" in other["parent"]  # forked, not spawned
    assert (one["who"], one["service"], one["level"]) == ("first", "svc-first", "DEBUG")
    assert (other["who"], other["service"], other["level"]) == ("second", "svc-second", "ERROR")
    assert (one["invocations"], again["invocations"], other["invocations"]) == (1, 2, 1)
    assert one["pid"] == again["pid"] != other["pid"]
    assert f"ministack-lambda-{first}-" in one["cwd"]


def test_a_forked_worker_past_its_timeout_is_killed_and_replaced(forking_cloud):
    instance, layer = forking_cloud
    lambdas = lambda_client(instance)
    name = create_fork_probe(lambdas, layer, timeout=2)
    warm = invoke_probe(lambdas, name)

    timed_out = invoke_probe(lambdas, name, {"sleep": 5})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{warm['pid']}").exists():
        time.sleep(0.1)  # the zygote reaps it: no zombie is left either
    fresh = invoke_probe(lambdas, name)

    assert "timed out" in timed_out["error"]["errorMessage"], timed_out
    assert not Path(f"/proc/{warm['pid']}").exists()
    assert fresh["pid"] != warm["pid"] and fresh["invocations"] == 1
    assert "forkserver.py" in fresh["parent"]


def test_a_dependency_layer_starts_its_zygote_when_published(state_dir, probe_layer_zip):
    cloud = LocalCloud(state_dir=state_dir)
    instance, _ = cloud.up(port=free_port())
    try:
        layer = publish_fork_probe_layer(instance, probe_layer_zip)
        # Before any function exists, the zygote a function on this layer forks from is starting.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "zygote pid" not in cloud.log_file.read_text():
            time.sleep(0.2)
        started = re.findall(r"zygote pid (\d+) for .*, layers (\S+):", cloud.log_file.read_text())
        lambdas = lambda_client(instance)
        probe = invoke_probe(lambdas, create_fork_probe(lambdas, layer))
        parent = int(Path(f"/proc/{probe['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert len(started) == 1 and "baton-layers" in started[0][1]
        assert parent == int(started[0][0])  # the first worker came from it
    finally:
        cloud.down()


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting for its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_the_cloud_its_zygote_and_its_forked_workers_stop_together(state_dir, probe_layer_zip):
    cloud = LocalCloud(state_dir=state_dir)
    instance, _ = cloud.up(port=free_port())
    lambdas = lambda_client(instance)
    worker = invoke_probe(lambdas, create_fork_probe(lambdas, publish_fork_probe_layer(instance,
                                                                                       probe_layer_zip)))
    zygote = int(Path(f"/proc/{worker['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert "forkserver.py" in worker["parent"] and running(zygote)

    cloud.down()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (running(worker["pid"]) or running(zygote)):
        time.sleep(0.1)

    assert not running(worker["pid"])
    assert not running(zygote)


def test_with_the_fork_server_off_workers_are_new_interpreters(state_dir, probe_layer_zip, monkeypatch):
    monkeypatch.setenv("BATON_FORK_SERVER", "0")
    cloud = LocalCloud(state_dir=state_dir)
    instance, _ = cloud.up(port=free_port())
    lambdas = lambda_client(instance)
    name = create_fork_probe(lambdas, publish_fork_probe_layer(instance, probe_layer_zip), WHO="plain")

    answer = invoke_probe(lambdas, name)

    assert "launcher.py" in answer["parent"] and answer["who"] == "plain"
