"""The retry policy: one piece of data, rendered as ASL and applied by the orchestrator."""

from __future__ import annotations

import random

import pytest

from pipeline.policy import CATCH_ALL, POLICY, asl_catch, asl_retry, delay_before_retry


def test_transient_and_lambda_service_errors_are_retryable() -> None:
    for name in ("TransientError", "Lambda.TooManyRequestsException", "Sandbox.Timedout"):
        assert POLICY.is_retryable(name), name


def test_final_errors_and_unknown_errors_are_not_retryable() -> None:
    for name in (*POLICY.final, "Runtime.HandlerError", "KeyError"):
        assert not POLICY.is_retryable(name), name


def test_retryable_and_final_names_do_not_overlap() -> None:
    assert not set(POLICY.retry_on) & set(POLICY.final)


def test_asl_retry_renders_the_policy_with_asl_field_names() -> None:
    assert asl_retry() == [
        {
            "ErrorEquals": list(POLICY.retry_on),
            "IntervalSeconds": POLICY.interval_seconds,
            "BackoffRate": POLICY.backoff_rate,
            "MaxAttempts": POLICY.max_attempts,
        }
    ]


def test_asl_retry_uses_no_field_the_local_emulator_ignores() -> None:
    for retrier in asl_retry():
        assert not {"JitterStrategy", "MaxDelaySeconds"} & set(retrier)
        assert isinstance(retrier["IntervalSeconds"], int) and retrier["IntervalSeconds"] >= 1


def test_asl_catch_sends_every_error_to_the_given_state() -> None:
    assert asl_catch("Record fetch failure", "$.failure") == [
        {"ErrorEquals": [CATCH_ALL], "ResultPath": "$.failure", "Next": "Record fetch failure"}
    ]


@pytest.mark.parametrize("retry", [1, 2, 3])
def test_delay_is_full_jitter_under_the_asl_wait(retry: int) -> None:
    rng = random.Random(7)
    bound = POLICY.interval_seconds * POLICY.backoff_rate ** (retry - 1)
    delays = [delay_before_retry(retry, rng) for _ in range(500)]
    assert all(0.0 <= delay <= bound for delay in delays)
    assert min(delays) < bound / 4 and max(delays) > bound * 3 / 4  # spread, not a constant


def test_delay_is_reproducible_with_a_seeded_rng() -> None:
    assert delay_before_retry(2, random.Random(1)) == delay_before_retry(2, random.Random(1))


def test_delay_before_the_first_try_is_an_error() -> None:
    with pytest.raises(ValueError, match="from 1"):
        delay_before_retry(0, random.Random())
