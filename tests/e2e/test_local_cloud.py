"""`baton up/down/status` against real MiniStack processes, each test with its own state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from baton import localcloud
from baton.errors import BatonError
from baton.localcloud import LocalCloud
from tests.e2e.conftest import free_port


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


def test_without_persist_state_starts_empty(state_dir):
    port = free_port()
    cloud = LocalCloud(state_dir=state_dir)
    cloud.up(port=port)
    s3(port).create_bucket(Bucket="gone-bucket")
    cloud.down()

    cloud.up(port=port)

    assert s3(port).list_buckets()["Buckets"] == []
