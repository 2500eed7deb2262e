"""Per-host concurrency: at most N fetches of one host in flight, across every scraper invocation.

The scraper is a stateless Lambda run by three engines at once, so the count lives in DynamoDB
(template.yaml's HostSlotsTable): host ``h`` has slots ``h#0`` .. ``h#N-1``, one item each while
taken. A slot is taken with a conditional put (free, or its lease expired) and released with a
conditional delete (still ours). A lease expires by itself when the attempt's deadline has passed
(plus a margin for the transport's last second), so a scraper that crashed, or whose sandbox was
killed, never holds a slot for ever; the table's TTL removes the leftovers later.

Schema:

    key        pk (S, HASH)  "<host:port>#<slot>"
    holder     S             a random id per acquisition: only its holder releases a slot
    expires_at N             epoch seconds: free after this (also the table's TTL attribute)
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.dynamodb import REFUSED, Table
from pipeline.errors import PipelineError, TransientError
from pipeline.observability import logger

HOST_SLOTS_TABLE_SCHEMA: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}
# The transport ends an attempt within its deadline + 1 s; a lease outlives that by this much.
LEASE_MARGIN_SECONDS = 2.0
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
# Slot calls are part of the attempt's budget: short timeouts, and one retry at most, so a slow
# table costs seconds, not the default profile's minute.
SLOT_CALLS = aws.Profile("host-slots", connect_timeout=2, read_timeout=3, max_attempts=2)


@dataclass(frozen=True)
class Lease:
    """One taken slot: its key and the id that proves it is ours."""

    key: str
    holder: str


class SlotStore(Protocol):
    """Where slots are taken and given back."""

    refused: str | None  # the last refusal (throttle, conflict) a take met, for the message

    def take(self, host: str, slots: int, expires_at: float, now: float) -> Lease | None: ...

    def give_back(self, lease: Lease) -> None: ...


class HostSlotsTable(Table):
    """SlotStore over the host slots table."""

    refused: str | None = None  # the last refusal DynamoDB answered a take with, if any

    def __init__(self, table_name: str, client: Any = None) -> None:
        super().__init__(table_name, client)
        # By host, the slot taken last by each thread: a sandbox runs one invocation at a time,
        # but a process calling the handler from several threads (the bench's in-process chain)
        # would otherwise send them all to one slot.
        self._taken = threading.local()

    @property
    def last_taken(self) -> dict[str, int]:
        """By host, the slot this thread took last."""
        if not hasattr(self._taken, "slots"):
            self._taken.slots = {}
        taken: dict[str, int] = self._taken.slots
        return taken

    @property
    def client(self) -> Any:
        """The test's client, else the shared one with the short SLOT_CALLS timeouts."""
        return self._client or aws.client("dynamodb", SLOT_CALLS)

    def take(self, host: str, slots: int, expires_at: float, now: float) -> Lease | None:
        """A free (or expired) slot of ``host`` leased until ``expires_at``, or None: all busy."""
        holder = uuid.uuid4().hex
        # A random order spreads the contenders over the slots instead of all racing for #0; the
        # slot this sandbox took last goes first: it gave it back itself, so it is likely free,
        # and sandboxes that each keep to their own slot rarely try one another's (a failed try
        # is one more request).
        order = random.sample(range(slots), slots)
        last = self.last_taken.get(host)
        if last is not None and last < slots:
            order.remove(last)
            order.insert(0, last)
        for slot in order:
            key = f"{host}#{slot}"
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item={"pk": {"S": key}, "holder": {"S": holder},
                          "expires_at": {"N": f"{expires_at:.3f}"}},
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
            except ClientError as error:
                if aws.error_code(error) == "ConditionalCheckFailedException":
                    continue  # held by someone else
                if aws.error_code(error) in REFUSED:
                    # Throttled or conflicting: nothing was written, so this slot counts as busy
                    # for this round and the wait polls again, within the attempt's budget.
                    self.refused = aws.error_code(error)
                    continue
                raise aws.translate(error, f"taking a fetch slot of {host}") from error
            except BotoCoreError as error:
                raise aws.translate(error, f"taking a fetch slot of {host}") from error
            self.last_taken[host] = slot
            return Lease(key, holder)
        return None

    def give_back(self, lease: Lease) -> None:
        """Free the slot, unless its lease expired and someone else holds it now."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": lease.key}},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": lease.holder}},
            )
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise aws.translate(error, f"releasing fetch slot {lease.key}") from error
        except BotoCoreError as error:
            raise aws.translate(error, f"releasing fetch slot {lease.key}") from error


class HostGate:
    """Holds one of a host's ``slots`` for the length of a fetch, waiting for one if need be."""

    def __init__(
        self,
        store: SlotStore,
        slots: int,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.slots = slots
        self.max_wait = max_wait
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.rng = rng or random.Random()

    @contextmanager
    def slot(self, host: str, deadline: float) -> Iterator[Lease]:
        """A slot of ``host`` (``host:port``) for the body of the ``with``, released after it.

        ``deadline`` is the attempt's (on ``clock``): the lease lasts until then (+ margin), and
        the wait ends ``max_wait`` seconds in or at the deadline, whichever comes first, with a
        TransientError the engines retry.
        """
        lease = self._wait(host, deadline)
        try:
            yield lease
        finally:
            self._give_back(lease)

    def _give_back(self, lease: Lease) -> None:
        try:
            self.store.give_back(lease)
        except PipelineError as error:
            # The lease ends by itself shortly after the attempt's deadline: a failed release
            # only keeps the slot until then, whereas failing the item would fetch it again.
            logger.warning("fetch slot not released; it expires by itself", slot=lease.key,
                           error=str(error))

    def _wait(self, host: str, deadline: float) -> Lease:
        began = self.clock()
        give_up = min(began + self.max_wait, deadline)
        poll = FIRST_POLL_SECONDS
        while True:
            now = self.clock()
            expires_at = self.wall() + (deadline - now) + LEASE_MARGIN_SECONDS
            lease = self.store.take(host, self.slots, expires_at, self.wall())
            if lease is not None:
                return lease
            left = give_up - self.clock()
            if left <= 0:
                refused = self.store.refused
                raise TransientError(
                    f"host busy: {self.slots} fetch(es) of {host} stayed in flight for the "
                    f"{self.clock() - began:.1f} s this attempt could wait (per-host limit "
                    f"{self.slots}, SCRAPER_HOST_CONCURRENCY)"
                    + (f"; the host slots table also refused takes ({refused})" if refused else "")
                )
            # Full jitter: waiters woken together would otherwise race for the same free slot.
            self.sleep(min(left, self.rng.uniform(poll / 2, poll)))
            poll = min(poll * 2, MAX_POLL_SECONDS)
