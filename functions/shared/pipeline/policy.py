"""The retry/catch policy of a pipeline step, written once as data for both engines.

The orchestrator applies it in Python (``is_retryable``, ``delay_before_retry``); the state
machine gets it as ASL (``asl_retry``, ``asl_catch``); a test checks that every Task of
``statemachines/pipeline.asl.json`` carries exactly ``asl_retry()``, so the engines cannot drift.

Semantics are those of ASL ``Retry``: ``max_attempts`` counts retries *after* the first try, and
the n-th retry waits ``interval_seconds * backoff_rate ** (n - 1)``. The orchestrator adds full
jitter under that bound; the state machine cannot, because the local emulator ignores
``JitterStrategy`` and ``MaxDelaySeconds`` (so neither is written into the ASL).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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
    ),
    final=("PermanentError", "ValidationError"),
    interval_seconds=1,
    backoff_rate=2.0,
    max_attempts=3,
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
