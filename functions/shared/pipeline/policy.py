"""The retry/catch policy of a pipeline step, written once as data for both engines.

The orchestrator and the choreography's adapters apply it in Python through one loop
(``call_with_retries``); the state machine gets it as ASL (``asl_retry``, ``asl_catch``), written
into every Task by ``baton build`` from the step registry (``pipeline.steps``) and checked by a
test, so the engines cannot drift.

Semantics are those of ASL ``Retry``: ``max_attempts`` counts retries *after* the first try, and
the n-th retry waits ``interval_seconds * backoff_rate ** (n - 1)``. The orchestrator adds full
jitter under that bound; the state machine cannot, because the local emulator ignores
``JitterStrategy`` and ``MaxDelaySeconds`` (so neither is written into the ASL).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

Result = TypeVar("Result")

CATCH_ALL = "States.ALL"


@dataclass(frozen=True)
class RetryPolicy:
    """Which errors are worth another try, how often, and how long to wait between tries."""

    # Error names as Lambda reports them (``errorType``) and Step Functions matches them.
    retry_on: tuple[str, ...]
    # Named for documentation and the orchestrator's logs: anything not in ``retry_on`` is final.
    final: tuple[str, ...]
    interval_seconds: int  # ASL requires a positive integer
    backoff_rate: float
    max_attempts: int  # retries after the first try

    def is_retryable(self, error_type: str) -> bool:
        """True when an error of this name may succeed on another try."""
        return error_type in self.retry_on

    def max_delay(self, retry: int) -> float:
        """The ASL wait before the ``retry``-th retry (1-based): interval * rate ** (retry - 1)."""
        return self.interval_seconds * self.backoff_rate ** (retry - 1)


POLICY = RetryPolicy(
    retry_on=(
        "TransientError",
        # The Lambda service's own transient failures, as Step Functions names them; the
        # orchestrator's invoker reports its boto3 failures under the same names.
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        # A step that hit its timeout (a slow server, a cold start) may well finish next time.
        "Sandbox.Timedout",
        # A step whose runtime died under it (killed, out of memory) may well run next time; every
        # step is safe to run again (the store is idempotent per run and URL).
        "Runtime.ExitError",
    ),
    final=("PermanentError", "ValidationError"),
    interval_seconds=1,
    backoff_rate=2.0,
    max_attempts=3,
)


# Recording an item's end (the run tracker) is retried longer than a step: the item's outcome must
# not be lost to a brief throttle (the tracker's concurrency is reserved and small).
RECORD_POLICY = RetryPolicy(
    retry_on=POLICY.retry_on,
    final=POLICY.final,
    interval_seconds=1,
    backoff_rate=1.5,
    max_attempts=8,
)


def asl_retry(policy: RetryPolicy = POLICY) -> list[dict[str, Any]]:
    """The ASL ``Retry`` list every Task state carries."""
    return [
        {
            "ErrorEquals": list(policy.retry_on),
            "IntervalSeconds": policy.interval_seconds,
            "BackoffRate": policy.backoff_rate,
            "MaxAttempts": policy.max_attempts,
        }
    ]


def asl_catch(next_state: str, result_path: str) -> list[dict[str, Any]]:
    """The ASL ``Catch`` list: whatever is left after retries goes to ``next_state``.

    States.ALL rather than the final names: an error nobody named (Runtime.ImportModuleError,
    States.Timeout...) must end the item, not the whole Map.
    """
    return [{"ErrorEquals": [CATCH_ALL], "ResultPath": result_path, "Next": next_state}]


def delay_before_retry(
    retry: int, rng: random.Random, policy: RetryPolicy = POLICY
) -> float:
    """Seconds to wait before the ``retry``-th retry (1-based): full jitter under the ASL wait.

    Full jitter (uniform in [0, bound]) spreads the retries of items that failed together, so
    they do not hit a struggling server again at the same instant.
    """
    if retry < 1:
        raise ValueError(f"retry counts from 1, got {retry}")
    return rng.uniform(0.0, policy.max_delay(retry))


def error_name(error: BaseException) -> str:
    """The name the policy matches: a remote error's ``error_type`` if it has one (a failed
    Lambda invoke's ``errorType``), else the class name, as Lambda reports a raised error."""
    return str(getattr(error, "error_type", None) or type(error).__name__)


class GaveUp(Exception):
    """A step failed for good: its last error and the tries it took (the policy's final answer)."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.error_type = error_name(error)


def call_with_retries(
    call: Callable[[], Result],
    *,
    policy: RetryPolicy = POLICY,
    sleep: Callable[[float], None],
    rng: random.Random,
    on_retry: Callable[[str, int], None] = lambda name, attempt: None,
) -> tuple[Result, int]:
    """``call()``'s result and the tries it took, retrying what ``policy`` says may pass later.

    The one retry loop of the engines that retry in Python (the orchestrator, the choreography's
    adapters), so an item's ``attempts`` means the same in all three engines. Every exception is
    classified by name, none swallowed: what is not retried (or no longer) raises ``GaveUp``.
    ``on_retry(error name, attempt)`` is told before each wait (for logs).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except Exception as error:
            name = error_name(error)
            if policy.is_retryable(name) and attempt <= policy.max_attempts:
                on_retry(name, attempt)
                sleep(delay_before_retry(attempt, rng, policy))
                continue
            raise GaveUp(error, attempt) from error
