"""The faults `baton run --faults SPEC` can inject, the SPEC they are named by, and the draw.

One catalogue serves the CLI (which parses and explains a SPEC) and the local cloud (which
injects: ``baton/localcloud/faults.py`` loads this file by its path, since the local cloud's
interpreter has no baton package). So this module imports nothing but the standard library.

A SPEC is comma-separated ``kind=rate`` (a fraction of the calls, 0 < rate <= 1) or
``kind=@k`` (each request's k-th attempt, k >= 1). Whether a call gets a fault is drawn from a
hash of the seed, the kind, the request's identity (what it asks, with the run id, timestamps and
request ids masked) and how many times that identity was seen: the same run given the same seed
meets the same faults, whatever order its concurrent calls arrive in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Where in the local cloud a kind is injected (``baton/localcloud/faults.py`` names its hooks so).
INVOKE = "lambda-invoke"  # the Lambda service accepting an invocation, before the function runs
RUN = "lambda-run"  # the function's execution environment, once the handler has run
ASYNC = "async-invoke"  # the asynchronous invocation queue delivering an event to a function
EVENT = "eventbridge"  # EventBridge delivering a matched event to its Lambda target
DYNAMODB = "dynamodb"
S3 = "s3"
SNS = "sns"


@dataclass(frozen=True)
class Kind:
    """One fault: where it happens and the error AWS answers with there."""

    name: str
    point: str
    error: str  # AWS's error code (for a delivery fault: what happens instead of an error)
    status: int | None  # the HTTP status of AWS's answer, when it is an API error
    what: str  # one line for `baton run --faults help`


CATALOGUE: tuple[Kind, ...] = (
    Kind("lambda.throttle", INVOKE, "TooManyRequestsException", 429,
         "Invoke refused with 429 TooManyRequestsException (Step Functions: "
         "Lambda.TooManyRequestsException; an async event waits and is retried)"),
    Kind("lambda.service", INVOKE, "ServiceException", 500,
         "Invoke fails with 500 ServiceException (Step Functions: Lambda.ServiceException)"),
    Kind("lambda.crash", RUN, "Runtime.ExitError", None,
         "the function's worker process is killed after its handler ran, before its answer "
         "(Runtime.ExitError, 'Runtime exited with error: signal: killed')"),
    Kind("lambda.timeout", RUN, "Sandbox.Timedout", None,
         "the invocation ends as timed out ('Task timed out after N seconds') and its worker "
         "is replaced; reported at once rather than after the function's timeout"),
    Kind("invoke.duplicate", ASYNC, "duplicate delivery", None,
         "an asynchronous invoke (InvocationType Event, an EventBridge target) delivered twice"),
    Kind("event.duplicate", EVENT, "duplicate delivery", None,
         "an EventBridge event delivered twice to its Lambda target"),
    Kind("event.delay", EVENT, "late delivery", None,
         "an EventBridge event delivered 0.5 to 3 s late"),
    Kind("dynamodb.throttle", DYNAMODB, "ProvisionedThroughputExceededException", 400,
         "a DynamoDB call refused with 400 ProvisionedThroughputExceededException"),
    Kind("dynamodb.conflict", DYNAMODB, "TransactionConflictException", 400,
         "a DynamoDB write refused for a conflicting transaction: 400 "
         "TransactionConflictException (TransactWriteItems: TransactionCanceledException, "
         "reason TransactionConflict)"),
    Kind("s3.slowdown", S3, "SlowDown", 503, "an S3 call refused with 503 SlowDown"),
    Kind("sns.throttle", SNS, "Throttling", 400, "an SNS call refused with 400 Throttling"),
)
KINDS = {kind.name: kind for kind in CATALOGUE}


class SpecError(ValueError):
    """A SPEC that cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class Rule:
    """One kind of fault and when it strikes: at a rate, or on each request's n-th attempt."""

    kind: str
    rate: float | None = None
    nth: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}=@{self.nth}" if self.nth is not None else f"{self.kind}={self.rate:g}"


def parse(spec: str) -> tuple[Rule, ...]:
    """The rules of a SPEC such as ``lambda.throttle=0.1,lambda.crash=@1``; SpecError otherwise."""
    if not spec.strip():
        raise SpecError("empty fault spec: give kind=rate or kind=@k, comma separated "
                        "(`--faults help` lists the kinds)")
    rules: dict[str, Rule] = {}
    for part in spec.split(","):
        part = part.strip()
        name, equals, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or not value:
            raise SpecError(f"bad fault {part!r}: expected kind=rate or kind=@k")
        if name not in KINDS:
            raise SpecError(f"unknown fault kind {name!r} in {part!r}; kinds: {', '.join(KINDS)}")
        if name in rules:
            raise SpecError(f"fault kind {name!r} given twice")
        rules[name] = _rule(name, value, part)
    return tuple(rules.values())


def _rule(name: str, value: str, part: str) -> Rule:
    if value.startswith("@"):
        if not value[1:].isdigit() or int(value[1:]) < 1:
            raise SpecError(f"bad fault {part!r}: @k needs a whole number k >= 1")
        return Rule(name, nth=int(value[1:]))
    try:
        rate = float(value)
    except ValueError:
        raise SpecError(f"bad fault {part!r}: the rate must be a number, got {value!r}") from None
    if not 0.0 < rate <= 1.0:  # also refuses nan
        raise SpecError(f"bad fault {part!r}: the rate must be above 0 and at most 1")
    return Rule(name, rate=rate)


def describe() -> str:
    """The catalogue as text: each kind, where it strikes and what AWS error it produces."""
    width = max(len(kind.name) for kind in CATALOGUE)
    errors = max(len(kind.error) for kind in CATALOGUE)
    lines = ["Fault kinds (SPEC: kind=rate or kind=@k, comma separated; --seed N):"]
    lines += [f"  {kind.name:<{width}}  {kind.error:<{errors}}  {kind.what}" for kind in CATALOGUE]
    lines.append("kind=rate strikes that fraction of the calls (0 < rate <= 1); kind=@k strikes "
                 "each request's k-th attempt. Local cloud only; the same seed and run meet the "
                 "same faults.")
    return "\n".join(lines)


# ---- the draw --------------------------------------------------------------------------------

# Parts of a request that differ between two runs asking the same thing: timestamps (ISO 8601,
# also inside S3/DynamoDB keys) and request ids. The run id is masked by value.
_VOLATILE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    re.IGNORECASE)


def identity(what: str, run_id: str = "") -> str:
    """A stable name for a request: ``what`` with the run id, timestamps and uuids masked, hashed."""
    if run_id:
        what = what.replace(run_id, "<run>")
    return hashlib.sha256(_VOLATILE.sub("<t>", what).encode("utf-8", "surrogatepass")).hexdigest()


def draw(seed: int, kind: str, request: str, occurrence: int) -> float:
    """A number in [0, 1) fixed by the seed, the kind, the request's identity and its occurrence."""
    digest = hashlib.sha256(f"{seed}|{kind}|{request}|{occurrence}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def strikes(rule: Rule, seed: int, request: str, occurrence: int) -> bool:
    """Whether ``rule`` injects its fault into the ``occurrence``-th attempt of ``request``."""
    if rule.nth is not None:
        return occurrence == rule.nth
    return draw(seed, rule.kind, request, occurrence) < (rule.rate or 0.0)


# ---- the CLI's side: the local cloud's admin path --------------------------------------------

ADMIN_PATH = "/_baton/faults"  # served by baton/localcloud/faults.py


class FaultsUnavailable(RuntimeError):
    """The local cloud did not take (or give back) the faults; the message says why."""


def admin(endpoint: str, method: str, settings: dict[str, object] | None = None) -> dict[str, object]:
    """Call the local cloud's fault admin path: PUT ``settings``, GET or DELETE; its JSON state."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(settings).encode() if settings is not None else None
    request = urllib.request.Request(endpoint.rstrip("/") + ADMIN_PATH, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            why = json.loads(error.read()).get("message", "")
        except ValueError:
            why = ""
        raise FaultsUnavailable(
            f"the local cloud at {endpoint} refused the faults ({error.code}{': ' + why if why else ''})"
            + ("; it predates fault injection: restart it (baton down, then baton up)"
               if error.code in (404, 405) and not why else "")) from None
    except (OSError, ValueError) as error:
        raise FaultsUnavailable(f"the local cloud at {endpoint} did not answer: {error}") from None
    if not isinstance(answer, dict):
        raise FaultsUnavailable(f"the local cloud at {endpoint} answered {answer!r}")
    return answer


def injected_counts(state: dict[str, object]) -> dict[str, int]:
    """The faults injected by kind, from the admin path's state, in catalogue order."""
    injected = state.get("injected")
    counts = injected if isinstance(injected, dict) else {}
    return {kind.name: int(counts[kind.name]) for kind in CATALOGUE if counts.get(kind.name)}
