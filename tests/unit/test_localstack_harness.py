"""The LocalStack harness binds to loopback only, keeps credentials away, and its docker stand-in
lets functions be created but never run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.localstack.conftest import harness


@pytest.fixture
def layout(tmp_path: Path):
    return harness.Layout(tmp_path)


def test_localstack_listens_on_loopback_without_the_users_credentials(layout, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    monkeypatch.setenv("LOCALSTACK_AUTH_TOKEN", "token")

    env = harness.environment(layout, 4599, stand_in_docker=False)

    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert env["DNS_ADDRESS"] == "0"
    assert not [key for key in env if key.startswith(("AWS_", "DOCKER_"))]
    assert "LOCALSTACK_AUTH_TOKEN" not in env
    assert env["FILESYSTEM_ROOT"] == str(layout.filesystem)


def test_the_docker_stand_in_answers_checks_and_refuses_to_run(layout):
    harness.setup_stand_in_docker(layout)
    docker = str(layout.stand_in_bin / "docker")

    assert harness.environment(layout, 4599, stand_in_docker=True)["DOCKER_CMD"] == docker
    assert subprocess.run([docker, "ps"], capture_output=True).returncode == 0
    refused = subprocess.run([docker, "create", "image"], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "refused by the stand-in" in refused.stderr


def test_without_the_stand_in_localstack_gets_its_own_runtime_back(layout):
    harness.setup_stand_in_docker(layout)

    harness.remove_stand_in_init(layout)

    assert not (layout.lib / harness.RUNTIME_INIT).exists()


def test_stopping_when_nothing_was_started_is_a_no_op(layout):
    assert harness.stop(layout) is None
