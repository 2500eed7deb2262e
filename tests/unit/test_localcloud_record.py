"""The local cloud's pid record is trusted only while its process is still the local cloud."""

import json
import os
import subprocess
import sys

import pytest

from baton.localcloud import LocalCloud, runs_launcher


@pytest.fixture
def cloud(tmp_path):
    said: list[str] = []
    instance = LocalCloud(state_dir=tmp_path, say=said.append)
    instance.said = said  # type: ignore[attr-defined]
    return instance


def record(cloud: LocalCloud, pid: int) -> None:
    cloud.pid_file.write_text(json.dumps({"pid": pid, "port": 4566, "persist": False}))


def test_a_record_of_a_live_process_that_is_not_the_cloud_is_stale(cloud):
    record(cloud, os.getpid())  # this test process: alive, but not the launcher

    assert cloud.running() is None
    assert not cloud.pid_file.exists()
    assert len(cloud.said) == 1 and f"stale local cloud record: pid {os.getpid()} is now" in cloud.said[0]


def test_a_record_of_an_exited_process_is_stale(cloud):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    record(cloud, exited.pid)

    assert cloud.down() is None
    assert not cloud.pid_file.exists()
    assert cloud.said == [f"Removed a stale local cloud record: pid {exited.pid} has exited."]


@pytest.mark.parametrize(("arguments", "is_cloud"), [
    (["/home/u/.baton/venvs/ministack-1/bin/python", "/src/baton/localcloud/launcher.py"], True),
    (["/usr/bin/sleep", "60"], False),
    (["python", "-m", "baton.cli", "up"], False),
    (["python", "/elsewhere/launcher.py"], False),
])
def test_the_cloud_is_recognised_by_its_command_line(arguments, is_cloud):
    assert runs_launcher(arguments) is is_cloud
