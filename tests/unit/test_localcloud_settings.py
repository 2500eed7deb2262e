"""The local cloud's bounds: an account concurrency limit sized to the machine, a short worker idle time."""

import pytest

from baton.errors import BatonError
from baton.localcloud import (
    DEFAULT_WORKER_IDLE_S,
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
