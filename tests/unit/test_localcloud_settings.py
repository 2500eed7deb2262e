"""The local cloud's bounds: an account concurrency limit sized to the machine, a short worker idle time."""

import re

import pytest

from baton.cli import main
from baton.errors import BatonError
from baton.localcloud import (
    DEFAULT_WORKER_IDLE_S,
    Running,
    concurrency_limit,
    default_concurrency,
    worker_idle_s,
)


def test_the_default_limit_is_sized_to_the_machine_within_aws_bounds(monkeypatch):
    monkeypatch.delenv("BATON_LAMBDA_CONCURRENCY", raising=False)

    assert 10 <= default_concurrency() <= 1000
    assert concurrency_limit() == default_concurrency()


def test_fewer_cores_mean_a_lower_limit(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    one_core = default_concurrency()
    monkeypatch.setattr("os.cpu_count", lambda: 64)

    assert 10 <= one_core <= 16 and default_concurrency() >= one_core


def test_settings_override_the_defaults(monkeypatch):
    monkeypatch.setenv("BATON_LAMBDA_CONCURRENCY", "3")
    monkeypatch.setenv("BATON_WORKER_IDLE_S", "5")

    assert concurrency_limit() == 3
    assert worker_idle_s() == 5.0


def test_the_idle_time_defaults_to_a_short_one(monkeypatch):
    monkeypatch.delenv("BATON_WORKER_IDLE_S", raising=False)

    assert worker_idle_s() == DEFAULT_WORKER_IDLE_S


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_setting_fails_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("BATON_LAMBDA_CONCURRENCY", value)

    expected = f"BATON_LAMBDA_CONCURRENCY must be a positive number, got '{value}'"
    with pytest.raises(BatonError, match=expected):
        concurrency_limit()


@pytest.mark.parametrize(("name", "value", "says"), [
    ("BATON_LAMBDA_CONCURRENCY", "2.5", "a whole number from 1 to 1000, got '2.5'"),
    ("BATON_LAMBDA_CONCURRENCY", "1001", "a whole number from 1 to 1000, got '1001'"),
    ("BATON_LAMBDA_CONCURRENCY", "nan", "a positive number, got 'nan'"),
    ("BATON_WORKER_IDLE_S", "inf", "a positive number, got 'inf'"),
    ("BATON_WORKER_IDLE_S", "7200", "at most 3600 seconds, got '7200'"),
])
def test_an_out_of_range_setting_fails_naming_it(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)

    with pytest.raises(BatonError, match=f"{name} must be {re.escape(says)}"):
        concurrency_limit() if name == "BATON_LAMBDA_CONCURRENCY" else worker_idle_s()


@pytest.mark.parametrize(("argv", "says"), [
    (["--concurrency", "0"], "between 1 and 1000, got 0"),
    (["--concurrency", "1001"], "between 1 and 1000, got 1001"),
    (["--concurrency", "ten"], "expected a whole number, got 'ten'"),
    (["--worker-idle", "0"], "more than 0 and at most 3600, got 0"),
    (["--worker-idle", "nan"], "more than 0 and at most 3600, got nan"),
    (["--worker-idle", "soon"], "expected a number of seconds, got 'soon'"),
])
def test_up_refuses_bad_bounds_before_starting_anything(monkeypatch, capsys, argv, says):
    monkeypatch.setattr("baton.commands.up.LocalCloud", lambda **_: pytest.fail("a cloud was started"))

    with pytest.raises(SystemExit) as exited:
        main(["up", *argv])

    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_up_passes_its_bounds_to_the_cloud(monkeypatch, capsys):
    asked: dict[str, object] = {}

    class Cloud:
        state_dir = log_file = "here"

        def __init__(self, **_: object) -> None:
            pass

        def up(self, **options: object) -> tuple[Running, bool]:
            asked.update(options)
            return Running(pid=1, port=4566, persist=False, version="1.5.33"), True

    monkeypatch.setattr("baton.commands.up.LocalCloud", Cloud)

    assert main(["up", "--concurrency", "4", "--worker-idle", "2.5"]) == 0
    assert asked == {"port": 4566, "persist": False, "concurrency": 4, "worker_idle": 2.5}
