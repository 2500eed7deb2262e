"""An entry's request headers and cookies, with values given by reference read at fetch time.

A value is a literal (not secret: ``Accept-Language``) or a reference: ``{"ssm": "/baton/x"}``
(SSM Parameter Store, decrypted) or ``{"secret": "baton/x"}`` (Secrets Manager, name or ARN).
The clear value exists only in the scraper's memory: it is never logged, and every message
names the reference instead. References must sit under the configured prefixes, the same ones
the scraper's IAM policy is scoped to, so a watchlist entry cannot make the scraper read any
other parameter or secret. Values are kept ``ttl`` seconds per warm process (a rotated secret
is picked up within that time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.errors import PermanentError
from pipeline.models import (
    FetchOptions,
    SecretRef,
    SessionValue,
    SsmRef,
    cookie_value_problem,
    value_problem,
)

# Answers meaning the reference itself is wrong (the same request cannot succeed later).
_NOT_FOUND = frozenset({"ParameterNotFound", "ParameterVersionNotFound", "ResourceNotFoundException"})


class SessionValues:
    """Resolves FetchOptions into the headers to send, reading references through a TTL cache."""

    def __init__(
        self,
        *,
        parameter_prefix: str,
        secret_prefix: str,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        ssm: Any = None,
        secrets: Any = None,
    ) -> None:
        self.parameter_prefix = parameter_prefix
        self.secret_prefix = secret_prefix
        self.ttl = ttl
        self.clock = clock
        self._ssm = ssm
        self._secrets = secrets
        self._cache: dict[SsmRef | SecretRef, tuple[float, str]] = {}

    def headers(self, options: FetchOptions | None) -> dict[str, str]:
        """The headers ``options`` ask for, Cookie included; {} for none."""
        if options is None:
            return {}
        headers = {name: self._checked(value, name, value_problem)
                   for name, value in options.headers.items()}
        if options.cookies:
            headers["Cookie"] = "; ".join(
                f"{name}={self._checked(value, f'cookie {name}', cookie_value_problem)}"
                for name, value in options.cookies.items())
        return headers

    def _checked(self, value: SessionValue, what: str,
                 problem: Callable[[str], str | None]) -> str:
        if isinstance(value, str):
            return value  # literals were checked by the model
        clear = self.value(value)
        if (why := problem(clear)) is not None:
            # Names the reference and the kind of problem, never the value.
            raise PermanentError(f"{value.describe()} cannot be sent as {what}: its value {why}")
        return clear

    def value(self, reference: SsmRef | SecretRef) -> str:
        """The clear value of ``reference``, from the cache while it is fresh."""
        cached = self._cache.get(reference)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        clear = self._read(reference)
        self._cache[reference] = (self.clock() + self.ttl, clear)
        return clear

    def _read(self, reference: SsmRef | SecretRef) -> str:
        action = f"reading {reference.describe()}"
        try:
            if isinstance(reference, SsmRef):
                self._require_prefix(reference.ssm, self.parameter_prefix, reference)
                answer = (self._ssm or aws.client("ssm")).get_parameter(
                    Name=reference.ssm, WithDecryption=True)
                return str(answer["Parameter"]["Value"])
            self._require_prefix(secret_name(reference.secret), self.secret_prefix, reference)
            answer = (self._secrets or aws.client("secretsmanager")).get_secret_value(
                SecretId=reference.secret)
        except ClientError as error:
            if aws.error_code(error) in _NOT_FOUND:
                raise PermanentError(f"{action} failed: it does not exist") from error
            raise aws.translate(error, action) from error
        except BotoCoreError as error:
            raise aws.translate(error, action) from error
        if "SecretString" not in answer:
            raise PermanentError(f"{action}: the secret is binary; a header needs a string")
        return str(answer["SecretString"])

    @staticmethod
    def _require_prefix(name: str, prefix: str, reference: SsmRef | SecretRef) -> None:
        if not name.startswith(prefix):
            raise PermanentError(
                f"{reference.describe()} is outside the scraper's reach: references must start "
                f"with {prefix!r} (SCRAPER_PARAMETER_PREFIX / SCRAPER_SECRET_PREFIX, the prefixes "
                "its IAM policy allows)"
            )


def secret_name(secret_id: str) -> str:
    """The name part of a Secrets Manager id: the id itself, or the name in an ARN
    (``arn:aws:secretsmanager:region:account:secret:name-AbCdEf``)."""
    if secret_id.startswith("arn:"):
        return secret_id.split(":", 6)[6] if secret_id.count(":") >= 6 else ""
    return secret_id
