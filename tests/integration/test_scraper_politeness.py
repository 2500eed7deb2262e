"""Host slots in a moto DynamoDB table, header values read from moto SSM and Secrets Manager,
and fetch options kept in the watchlist as references only."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from baton.site_pages import MEMBER_COOKIE, MEMBER_COOKIE_VALUE, MEMBER_HEADER, MEMBER_TOKEN
from baton.watch import Watch, entries_table
from monitor.logic import run_request
from pipeline.errors import PermanentError, TransientError
from pipeline.models import FetchOptions, SecretRef, SsmRef
from pipeline.monitor_models import WatchEntry
from pipeline.watchlist import WATCHLIST_TABLE_SCHEMA, WatchlistTable
from scraper.session import SessionValues
from scraper.slots import HOST_SLOTS_TABLE_SCHEMA, HostGate, HostSlotsTable

TOKEN = "s3cr3t-t0ken"
# Failing invocations publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def slots(aws: None) -> HostSlotsTable:
    name = f"baton-slots-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb")
    client.create_table(TableName=name, **HOST_SLOTS_TABLE_SCHEMA)
    return HostSlotsTable(name, client)


def test_a_host_has_exactly_its_number_of_slots(slots: HostSlotsTable) -> None:
    now = time.time()
    leases = [slots.take("example.com:80", 2, now + 30, now) for _ in range(3)]

    assert leases[0] is not None and leases[1] is not None and leases[0].key != leases[1].key
    assert leases[2] is None
    assert slots.take("other.test:80", 2, now + 30, now) is not None  # hosts count apart


def test_a_released_slot_is_free_again(slots: HostSlotsTable) -> None:
    now = time.time()
    first = slots.take("example.com:80", 1, now + 30, now)
    assert first is not None and slots.take("example.com:80", 1, now + 30, now) is None

    slots.give_back(first)

    assert slots.take("example.com:80", 1, now + 30, now) is not None


@pytest.mark.parametrize("apart", ["two sandboxes", "two threads of one process"])
def test_a_sandbox_tries_the_slot_it_gave_back_first(slots: HostSlotsTable, apart: str) -> None:
    now, host = time.time(), "example.com:80"
    puts: list[str] = []
    slots.client.meta.events.register(
        "provide-client-params.dynamodb.PutItem",
        lambda params, **_: puts.append(params["Item"]["pk"]["S"]))
    # The second taker: another sandbox on the same table, or the same table from another thread.
    other = HostSlotsTable(slots.table_name, slots.client) if apart == "two sandboxes" else slots
    taken: list[tuple[str, str]] = []
    puts_a_round: list[int] = []
    with ThreadPoolExecutor(1) as first, ThreadPoolExecutor(1) as second:  # one thread each
        for _ in range(20):
            before = len(puts)
            ours = first.submit(slots.take, host, 40, now + 30, now).result()
            theirs = second.submit(other.take, host, 40, now + 30, now).result()
            assert ours is not None and theirs is not None
            taken.append((ours.key, theirs.key))
            puts_a_round.append(len(puts) - before)
            slots.give_back(ours)
            other.give_back(theirs)

    # After the first round, each takes the slot it gave back, at the first try.
    assert set(taken[1:]) == {taken[0]}
    assert puts_a_round[1:] == [2] * 19


def test_an_expired_lease_is_taken_over_and_its_late_release_frees_nothing(
        slots: HostSlotsTable) -> None:
    now = time.time()
    crashed = slots.take("example.com:80", 1, now + 5, now)
    assert crashed is not None

    later = now + 6  # the crashed holder's lease has run out
    successor = slots.take("example.com:80", 1, later + 30, later)
    assert successor is not None
    slots.give_back(crashed)  # the old holder wakes up: its delete must not free the new lease

    assert slots.take("example.com:80", 1, later + 30, later) is None


def test_a_take_dynamodb_refuses_counts_as_busy_and_the_next_poll_takes_the_slot(
        slots: HostSlotsTable) -> None:
    refusals = ["TransactionConflictException", "ProvisionedThroughputExceededException"]

    def refuse(**_: object) -> None:
        if refusals:
            raise ClientError({"Error": {"Code": refusals.pop(0), "Message": "refused"}}, "PutItem")

    slots.client.meta.events.register("before-call.dynamodb.PutItem", refuse)
    now = time.time()
    gate = HostGate(slots, 1, max_wait=5, sleep=lambda _: None)

    with gate.slot("example.com:80", deadline=time.monotonic() + 10) as lease:
        assert lease.key == "example.com:80#0"

    assert refusals == [] and slots.refused == "ProvisionedThroughputExceededException"
    assert slots.take("example.com:80", 1, now + 30, now) is not None  # given back after


def test_concurrent_fetches_of_one_host_never_exceed_the_limit(slots: HostSlotsTable) -> None:
    in_flight, peak = 0, 0
    lock = threading.Lock()
    # Holders wait for each other two by two, so the limit is reached whatever the machine's
    # load (a sleep alone let a slow machine run them one after another); the others queue.
    pair = threading.Barrier(2)

    def fetch() -> None:
        nonlocal in_flight, peak
        gate = HostGate(slots, 2, max_wait=20)
        with gate.slot("example.com:80", deadline=time.monotonic() + 25):
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            pair.wait(timeout=10)
            time.sleep(0.1)  # a third fetch would show up here if the limit did not hold
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert peak == 2
    assert boto3.client("dynamodb").scan(TableName=slots.table_name)["Items"] == []


# -- values by reference -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def references(aws: None) -> None:
    boto3.client("ssm").put_parameter(Name="/baton/site-token", Value=TOKEN, Type="SecureString")
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="baton/site-cookie", SecretString="c00kie")
    secrets.create_secret(Name="baton/binary", SecretBinary=b"\x00\x01")
    secrets.create_secret(Name="baton/broken", SecretString="a\r\nHost: evil.test")


def values(clock: Clock | None = None) -> SessionValues:
    return SessionValues(parameter_prefix="/baton/", secret_prefix="baton/", ttl=300,
                         clock=clock or Clock())


def test_references_are_resolved_into_headers_and_cookies(references: None) -> None:
    options = FetchOptions(headers={"X-Site-Token": SsmRef(ssm="/baton/site-token"),
                                    "Accept-Language": "fr"},
                           cookies={"session": SecretRef(secret="baton/site-cookie")})

    assert values().headers(options) == {"X-Site-Token": TOKEN, "Accept-Language": "fr",
                                         "Cookie": "session=c00kie"}


def test_a_secret_is_found_by_its_arn_too(references: None) -> None:
    arn = boto3.client("secretsmanager").describe_secret(SecretId="baton/site-cookie")["ARN"]

    assert values().value(SecretRef(secret=arn)) == "c00kie"


def test_values_are_kept_for_their_ttl_then_read_again(references: None) -> None:
    clock = Clock()
    session = values(clock)
    assert session.value(SsmRef(ssm="/baton/site-token")) == TOKEN
    boto3.client("ssm").put_parameter(Name="/baton/site-token", Value="rotated",
                                      Type="SecureString", Overwrite=True)

    assert session.value(SsmRef(ssm="/baton/site-token")) == TOKEN
    clock.now += 301
    assert session.value(SsmRef(ssm="/baton/site-token")) == "rotated"


@pytest.mark.parametrize(("reference", "complaint"), [
    (SsmRef(ssm="/baton/missing"), "reading ssm:/baton/missing failed: it does not exist"),
    (SecretRef(secret="baton/missing"), "reading secret:baton/missing failed: it does not exist"),
    (SecretRef(secret="baton/binary"), "the secret is binary"),
    (SsmRef(ssm="/elsewhere/token"), "outside the scraper's reach"),
    (SecretRef(secret="other/secret"), "outside the scraper's reach"),
])
def test_a_reference_that_cannot_be_read_is_a_permanent_error_naming_it(
        references: None, reference: SsmRef | SecretRef, complaint: str) -> None:
    with pytest.raises(PermanentError, match=complaint):
        values().value(reference)


def test_a_value_that_would_split_the_header_is_refused_without_being_shown(
        references: None) -> None:
    options = FetchOptions(headers={"X-A": SecretRef(secret="baton/broken")})

    with pytest.raises(PermanentError) as raised:
        values().headers(options)

    assert "secret:baton/broken cannot be sent as X-A" in str(raised.value)
    assert "evil" not in str(raised.value)


def test_throttling_is_transient(references: None) -> None:
    class Throttled:
        def get_parameter(self, **_: object) -> None:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetParameter")

    session = SessionValues(parameter_prefix="/baton/", secret_prefix="baton/", ttl=300,
                            ssm=Throttled())
    with pytest.raises(TransientError):
        session.value(SsmRef(ssm="/baton/site-token"))


# -- the watchlist keeps references, and the monitor passes them on ---------------------------------


@pytest.fixture
def watchlist(aws: None) -> Iterator[WatchlistTable]:
    name = f"baton-watch-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb")
    client.create_table(TableName=name, **WATCHLIST_TABLE_SCHEMA)
    yield WatchlistTable(name, client)


def test_an_entrys_options_are_stored_as_references_and_passed_to_its_run(
        watchlist: WatchlistTable) -> None:
    options = FetchOptions(headers={"X-Site-Token": SsmRef(ssm="/baton/site-token")},
                           cookies={"sid": SecretRef(secret="baton/site-cookie")}, robots=False)
    Watch(watchlist).add("http://a.test/members", label="Members", options=options)
    Watch(watchlist).add("http://a.test/public")

    stored = boto3.client("dynamodb").scan(TableName=watchlist.table_name)["Items"]
    (entry, plain) = sorted(Watch(watchlist).entries(), key=lambda e: e.url)
    request = run_request("run-1", [entry, plain], {}, max_concurrency=2)

    assert entry.options == options and plain.options is None
    assert request.options == {"http://a.test/members": options}
    assert '"ssm": "/baton/site-token"' in json.dumps(request.model_dump(mode="json"))
    assert any(item.get("options", {}).get("M", {}).get("robots") == {"BOOL": False}
               for item in stored)
    assert "X-Site-Token(ssm:/baton/site-token), cookie sid(secret:baton/site-cookie), " \
           "robots ignored" in entries_table([entry])


def test_default_options_are_not_kept() -> None:
    entry = WatchEntry(url="http://a.test/", added_at=datetime.now(UTC), options=FetchOptions())

    assert entry.options is None


# -- the handler, on the sample site ------------------------------------------------------------


@pytest.fixture
def polite_scraper(sample_site, bucket: str, slots: HostSlotsTable, references: None,
                   monkeypatch: pytest.MonkeyPatch, lambda_context):
    """The scraper handler with its slots table and references, allowed to fetch the site."""
    from scraper import handler

    host, port = sample_site.server_address[:2]
    monkeypatch.setenv("SCRAPER_ALLOWED_HOSTS", f"{host!s}:{port}")
    monkeypatch.setenv("SCRAPER_SLOTS_TABLE", slots.table_name)
    boto3.client("ssm").put_parameter(Name="/baton/sample-token", Value=MEMBER_TOKEN,
                                      Type="SecureString")
    boto3.client("secretsmanager").create_secret(Name="baton/sample-member",
                                                 SecretString=MEMBER_COOKIE_VALUE)

    def invoke(path: str, options: FetchOptions | None = None) -> dict:
        event = {"run_id": f"run-{uuid.uuid4().hex[:8]}", "url": sample_site.base_url + path,
                 "options": None if options is None else options.model_dump(mode="json")}
        return handler.lambda_handler(event, lambda_context)

    return invoke


MEMBER_OPTIONS = FetchOptions(headers={MEMBER_HEADER: SsmRef(ssm="/baton/sample-token")},
                              cookies={MEMBER_COOKIE: SecretRef(secret="baton/sample-member")})


def test_the_handler_honours_the_sites_robots_txt_unless_the_entry_opts_out(
        polite_scraper, sample_site) -> None:
    with pytest.raises(PermanentError, match=r"RobotsDisallowed: .*Disallow: /private/"):
        polite_scraper("/private/page")

    page = polite_scraper("/private/page", FetchOptions(robots=False))
    polite_scraper("/pages/garden")

    assert page["status_code"] == 200
    assert sample_site.state.snapshot()["robots_hits"] == 1  # kept by the warm scraper


def test_the_handler_sends_the_members_page_its_header_and_cookie_from_their_references(
        polite_scraper) -> None:
    with pytest.raises(PermanentError, match="answered 401"):
        polite_scraper("/members/report")

    page = polite_scraper("/members/report", MEMBER_OPTIONS)

    assert page["status_code"] == 200 and page["raw_key"]


def test_the_handler_leaves_no_slot_taken(polite_scraper, slots: HostSlotsTable) -> None:
    polite_scraper("/pages/garden")
    with pytest.raises(PermanentError):
        polite_scraper("/private/page")

    assert boto3.client("dynamodb").scan(TableName=slots.table_name)["Items"] == []
