"""A run still marked running after the local cloud restarted is known to be stopped: listed as
interrupted, and redriven without --force (its carriers died with the earlier process)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from baton import localcloud
from baton.executions import run_status
from engines.client import carried_by_an_earlier_cloud

STARTED = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
RUNNING = {"status": "running", "started_at": STARTED.isoformat(),
           "updated_at": (STARTED + timedelta(seconds=5)).isoformat()}


@pytest.mark.parametrize(("restarted_at", "carried"), [
    (None, False),  # not the local cloud (AWS), or not known
    (STARTED - timedelta(minutes=1), False),  # the same cloud process runs it
    (STARTED + timedelta(seconds=3), False),  # it was (re)started again after the restart
    (STARTED + timedelta(minutes=1), True),
])
def test_a_run_last_started_before_the_cloud_is_not_carried_by_it(restarted_at, carried):
    assert carried_by_an_earlier_cloud(RUNNING, restarted_at) is carried
    expected = "interrupted" if carried else "running"
    assert run_status(RUNNING, STARTED + timedelta(minutes=2), restarted_at) == expected


def test_an_ended_run_keeps_its_status_whatever_restarted():
    ended = RUNNING | {"status": "succeeded"}
    assert run_status(ended, STARTED, STARTED + timedelta(hours=1)) == "succeeded"


def test_the_cloud_started_at_is_read_from_its_record_only_for_its_own_port(tmp_path, monkeypatch):
    monkeypatch.setenv("BATON_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(localcloud, "command_line", lambda pid: ["python", str(localcloud.LAUNCHER)])
    monkeypatch.setattr(localcloud, "probe_health", lambda port, *args, **kwargs: {"version": "x"})
    (tmp_path / "ministack.pid").write_text(json.dumps(
        {"pid": 1, "port": 4599, "persist": True, "started_at": STARTED.isoformat()}))

    assert localcloud.serving_since(4599) == STARTED
    assert localcloud.serving_since(4566) is None  # another cloud answers there
