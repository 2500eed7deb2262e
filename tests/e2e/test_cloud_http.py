"""The local cloud's HTTP server (uvicorn, started by the launcher) as the SDKs and baton meet it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from baton.localcloud import LocalCloud, Running
from tests.e2e.conftest import free_port


def test_a_large_s3_upload_through_boto3_is_stored_whole_after_its_100_continue(aws):
    s3 = aws("s3")
    bucket = f"large-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    sent: list[dict[str, bytes]] = []
    s3.meta.events.register("before-send.s3.PutObject",
                            lambda request, **_: sent.append(dict(request.headers)))
    body = os.urandom(8 * 2**20)

    s3.put_object(Bucket=bucket, Key="large", Body=body)

    assert sent and sent[0].get("Expect") == b"100-continue", "botocore did not wait for a 100 Continue"
    assert s3.get_object(Bucket=bucket, Key="large")["Body"].read() == body


def test_a_request_expecting_100_continue_gets_it_before_sending_its_body(aws, local_cloud: Running):
    bucket = f"expect-{uuid.uuid4().hex[:12]}"
    aws("s3").create_bucket(Bucket=bucket)

    with socket.create_connection(("127.0.0.1", local_cloud.port), timeout=10) as connection:
        connection.sendall(f"PUT /{bucket}/k HTTP/1.1\r\nHost: 127.0.0.1:{local_cloud.port}\r\n"
                           "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        interim = connection.recv(100)
        connection.sendall(b"hello")
        final = connection.recv(1000)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"  # with its reason phrase (MiniStack issue #389)
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert aws("s3").get_object(Bucket=bucket, Key="k")["Body"].read() == b"hello"


def test_responses_have_a_reason_phrase_one_date_and_no_server_header(local_cloud: Running):
    connection = http.client.HTTPConnection("127.0.0.1", local_cloud.port, timeout=10)
    try:
        connection.request("GET", "/_ministack/health")
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    names = [name.lower() for name, _ in response.getheaders()]
    assert (response.status, response.reason) == (200, "OK")
    assert names.count("date") == 1
    assert "server" not in names


def test_a_connection_is_kept_open_between_requests(local_cloud: Running):
    connection = http.client.HTTPConnection("127.0.0.1", local_cloud.port, timeout=10)
    try:
        addresses = []
        for _ in range(2):
            connection.request("GET", "/_ministack/health")
            response = connection.getresponse()
            response.read()
            assert not response.will_close
            assert connection.sock is not None
            addresses.append(connection.sock.getsockname())
    finally:
        connection.close()

    assert addresses[0] == addresses[1]


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # No periodic save during the test: what a restart finds was saved by the shutdown.
    monkeypatch.setenv("BATON_PERSIST_INTERVAL_S", "3600")
    yield tmp_path
    LocalCloud(state_dir=tmp_path).down()


def test_down_saves_the_state_while_a_request_is_still_in_flight(state_dir):
    said: list[str] = []
    cloud = LocalCloud(state_dir=state_dir, say=said.append)
    port = free_port()
    instance, _ = cloud.up(port=port, persist=True)
    sqs = boto3.client("sqs", endpoint_url=instance.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue_url = sqs.create_queue(QueueName="kept-across-a-busy-stop")["QueueUrl"]
    polling = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    polling.request("GET", "/_ministack/health")  # the connection is served before the long poll
    polling.getresponse().read()
    # A ReceiveMessage that waits 20 s for nothing: still in flight when the cloud is stopped.
    polling.request("POST", "/", body=json.dumps({"QueueUrl": queue_url, "WaitTimeSeconds": 20}),
                    headers={"X-Amz-Target": "AmazonSQS.ReceiveMessage",
                             "Content-Type": "application/x-amz-json-1.0"})

    cloud.down()
    polling.close()
    log = cloud.log_file.read_text()
    cloud.up(port=port, persist=True)

    assert "Waiting for connections to close" in log, "no request was in flight: the test proved nothing"
    assert not [line for line in said if "killing" in line], said
    assert "Application shutdown complete" in log
    assert sqs.list_queues().get("QueueUrls") == [queue_url]
