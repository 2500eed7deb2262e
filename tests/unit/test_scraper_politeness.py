"""Politeness and sessions in the scraper, over fakes: robots.txt, host slots, per-URL headers."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from engines.choreography import start_choreography
from pipeline.errors import PermanentError, TransientError
from pipeline.models import FetchOptions, RunRequest, ScrapeRequest, SecretRef, SsmRef
from scraper.fetch import Fetcher
from scraper.logic import Politeness, host_key, scrape
from scraper.robots import (
    DISALLOWED,
    UNREACHABLE_TTL_SECONDS,
    Robots,
    parse,
    product_token,
    robots_fetcher,
)
from scraper.session import SessionValues, secret_name
from scraper.slots import LEASE_MARGIN_SECONDS, HostGate, Lease
from tests.choreography_fakes import BUS, FakeEventsClient
from tests.orchestrator_fakes import FakeSteps
from tests.unit.test_choreography_events import FakeRuns
from tests.unit.test_pipeline_asl import ASL, run_orchestrator, run_state_machine
from tests.unit.test_scraper_fetch import FakeResponse, FakeTransport, Route, make_fetcher

TEXT = {"content-type": "text/plain"}
SITE = "http://example.com"


class Clock:
    """A settable monotonic clock; ``sleep`` advances it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- robots.txt: parsing and matching ----------------------------------------------------------

ROBOTS = """
# comments and unknown lines are ignored
User-agent: *
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$
Disallow: /search?q=

User-agent: other-bot
Disallow: /

Sitemap: http://example.com/sitemap.xml
"""


def rules_of(text: str, agent: str = "baton-scraper"):
    return parse(text, f"{SITE}/robots.txt", agent)


@pytest.mark.parametrize(("path", "allowed"), [
    ("/", True),
    ("/private/", False),
    ("/private/x", False),
    ("/private/open", True),  # the longer Allow wins
    ("/private/opening", True),
    ("/doc.pdf", False),
    ("/doc.pdf?x=1", True),  # "$" anchors at the end of path and query
    ("/search?q=cats", False),
    ("/search", True),
    ("/robots.txt", True),
])
def test_the_longest_matching_rule_decides(path: str, allowed: bool) -> None:
    assert (rules_of(ROBOTS).deciding_rule(SITE + path) is None
            or rules_of(ROBOTS).deciding_rule(SITE + path).allow) is allowed


def test_allow_wins_a_tie_between_rules_of_the_same_length() -> None:
    rules = rules_of("User-agent: *\nDisallow: /page\nAllow: /page\n")

    rules.check(f"{SITE}/page")  # does not raise


def test_the_group_naming_our_product_token_replaces_the_star_group() -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: Baton-Scraper/2.0\nDisallow: /only-this\n"
    rules = rules_of(text)

    rules.check(f"{SITE}/anything")
    with pytest.raises(PermanentError, match=DISALLOWED):
        rules.check(f"{SITE}/only-this")
    assert rules.group == "baton-scraper"


def test_groups_naming_the_same_agent_are_merged_and_consecutive_agents_share_rules() -> None:
    text = ("User-agent: a\nUser-agent: baton-scraper\nDisallow: /one\n\n"
            "User-agent: baton-scraper\nDisallow: /two\n")

    for path in ("/one", "/two"):
        with pytest.raises(PermanentError, match=DISALLOWED):
            rules_of(text).check(SITE + path)


def test_an_empty_disallow_and_no_matching_group_allow_everything() -> None:
    rules_of("User-agent: *\nDisallow:\n").check(f"{SITE}/x")
    rules_of("User-agent: other\nDisallow: /\n").check(f"{SITE}/x")
    rules_of("").check(f"{SITE}/x")


def test_percent_encoding_is_compared_decoded() -> None:
    with pytest.raises(PermanentError, match=DISALLOWED):
        rules_of("User-agent: *\nDisallow: /caf%C3%A9\n").check(f"{SITE}/café")
    with pytest.raises(PermanentError, match=DISALLOWED):
        rules_of("User-agent: *\nDisallow: /%7Euser\n").check(f"{SITE}/~user/page")


def test_a_disallowed_url_is_a_permanent_error_naming_the_rule_and_the_file() -> None:
    with pytest.raises(PermanentError) as raised:
        rules_of(ROBOTS).check(f"{SITE}/private/x")

    message = str(raised.value)
    assert message.startswith("RobotsDisallowed: ")
    assert "Disallow: /private/ (line 4)" in message and f"{SITE}/robots.txt" in message


def test_the_product_token_is_the_user_agent_up_to_its_version() -> None:
    assert product_token("baton-scraper/0.1 (+https://github.com/baton)") == "baton-scraper"


# -- robots.txt: fetching and caching ----------------------------------------------------------


def robots_over(routes: dict[str, Route], clock: Clock, ttl: float = 3600.0
                ) -> tuple[Robots, FakeTransport]:
    pages, transport = make_fetcher(routes, clock=clock)
    return Robots(robots_fetcher(pages, transport), ttl=ttl, clock=clock), transport


def robots_file(text: str) -> FakeResponse:
    return FakeResponse(200, dict(TEXT), text.encode())


def test_robots_txt_is_fetched_once_per_origin_and_kept_for_its_ttl() -> None:
    clock = Clock()
    robots, transport = robots_over({f"{SITE}/robots.txt": robots_file(ROBOTS)}, clock, ttl=60)

    robots.check(f"{SITE}/a", clock() + 25)
    robots.check(f"{SITE}/b", clock() + 25)
    assert len(transport.hops) == 1
    clock.now += 61
    transport.routes[f"{SITE}/robots.txt"] = robots_file("User-agent: *\nDisallow: /b\n")

    with pytest.raises(PermanentError, match=DISALLOWED):
        robots.check(f"{SITE}/b", clock() + 25)
    assert len(transport.hops) == 2


def test_a_warm_scraper_keeps_a_bounded_number_of_robots_files(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scraper.robots.MAX_KNOWN_ORIGINS", 2)
    clock = Clock()
    routes: dict[str, Route] = {f"http://{name}.test/robots.txt": robots_file("")
                                for name in ("a", "b", "c")}
    robots, transport = robots_over(routes, clock)

    for name in ("a", "b", "c", "c", "a"):
        robots.check(f"http://{name}.test/page", clock() + 25)

    # a was forgotten when c came, so it was fetched again; c was still known.
    assert [hop.host for hop in transport.hops] == ["a.test", "b.test", "c.test", "a.test"]


@pytest.mark.parametrize("status", [404, 401, 403, 410])
def test_a_robots_txt_answered_4xx_allows_everything(status: int) -> None:
    clock = Clock()
    robots, _ = robots_over({f"{SITE}/robots.txt": FakeResponse(status, dict(TEXT), b"no")}, clock)

    robots.check(f"{SITE}/private/x", clock() + 25)  # does not raise


@pytest.mark.parametrize("failure", [FakeResponse(503, dict(TEXT), b""),
                                     FakeResponse(429, dict(TEXT), b""),
                                     ConnectionResetError("reset")])
def test_an_unreachable_robots_txt_disallows_everything_for_a_while(failure: Route) -> None:
    clock = Clock()
    robots, transport = robots_over({f"{SITE}/robots.txt": failure}, clock)

    for _ in range(2):
        with pytest.raises(TransientError, match=r"robots\.txt of http://example\.com is unreachable"):
            robots.check(f"{SITE}/page", clock() + 25)
    assert len(transport.hops) == 1  # the second page did not ask again
    clock.now += UNREACHABLE_TTL_SECONDS + 1
    transport.routes[f"{SITE}/robots.txt"] = robots_file("User-agent: *\nAllow: /\n")

    robots.check(f"{SITE}/page", clock() + 25)
    assert len(transport.hops) == 2


def test_running_out_of_time_reading_robots_txt_fails_the_attempt_but_is_not_kept() -> None:
    clock = Clock()
    robots, transport = robots_over({f"{SITE}/robots.txt": robots_file(ROBOTS)}, clock)

    with pytest.raises(TransientError, match="before the attempt's deadline"):
        robots.check(f"{SITE}/page", clock() - 1)  # an attempt whose time is already spent
    robots.check(f"{SITE}/page", clock() + 25)

    assert len(transport.hops) == 1  # the first attempt never sent; the second asked again


def test_a_robots_txt_the_fetcher_refuses_for_good_allows_everything() -> None:
    clock = Clock()
    binary = FakeResponse(200, {"content-type": "image/png"}, b"\x89PNG\r\n\x1a\n")
    robots, _ = robots_over({f"{SITE}/robots.txt": binary}, clock)

    robots.check(f"{SITE}/private/x", clock() + 25)  # does not raise


def test_robots_txt_is_fetched_under_the_pages_guards() -> None:
    clock = Clock()
    robots, transport = robots_over({}, clock)

    # A private address is refused by the SSRF guard before any request: permanent, so allowed
    # here, and the page's own fetch is refused the same way.
    robots.check("http://10.0.0.1/page", clock() + 25)
    assert transport.hops == []


def test_a_robots_txt_redirect_is_followed_under_the_guard() -> None:
    clock = Clock()
    routes: dict[str, Route] = {
        f"{SITE}/robots.txt": FakeResponse(301, {"location": "https://example.com/robots.txt"},
                                           b""),
        "https://example.com/robots.txt": robots_file("User-agent: *\nDisallow: /x\n"),
    }
    robots, _ = robots_over(routes, clock)

    with pytest.raises(PermanentError, match=DISALLOWED):
        robots.check(f"{SITE}/x", clock() + 25)


# -- host slots ----------------------------------------------------------------------------------


@dataclass
class FakeSlots:
    """Slots in memory: ``busy`` of them held by others, freed when the clock passes ``free_at``."""

    clock: Clock
    busy: int = 0
    free_at: float = float("inf")
    taken: list[tuple[str, float]] = field(default_factory=list)
    given_back: list[Lease] = field(default_factory=list)
    attempts: int = 0
    refused: str | None = None

    def take(self, host: str, slots: int, expires_at: float, now: float) -> Lease | None:
        self.attempts += 1
        if self.busy >= slots and self.clock() < self.free_at:
            return None
        self.taken.append((host, expires_at))
        return Lease(f"{host}#0", "me")

    def give_back(self, lease: Lease) -> None:
        self.given_back.append(lease)


def gate_over(slots: FakeSlots, clock: Clock, max_wait: float = 10.0) -> HostGate:
    return HostGate(slots, 2, max_wait=max_wait, clock=clock, wall=lambda: 1_000.0 + clock(),
                    sleep=clock.sleep, rng=random.Random(1))


def test_a_free_slot_is_taken_at_once_and_given_back_after_the_fetch() -> None:
    clock = Clock()
    slots = FakeSlots(clock)

    with gate_over(slots, clock).slot("example.com:80", deadline=clock() + 25):
        assert slots.given_back == []

    assert slots.attempts == 1 and len(slots.given_back) == 1 and clock.slept == []


def test_the_lease_ends_with_the_attempts_deadline_plus_a_margin() -> None:
    clock = Clock()
    slots = FakeSlots(clock)

    with gate_over(slots, clock).slot("example.com:80", deadline=clock() + 25):
        pass

    ((_, expires_at),) = slots.taken
    assert expires_at == pytest.approx(1_000.0 + clock() + 25 + LEASE_MARGIN_SECONDS)


def test_a_busy_host_is_waited_for_until_a_slot_frees() -> None:
    clock = Clock()
    slots = FakeSlots(clock, busy=2, free_at=clock() + 3)

    with gate_over(slots, clock).slot("example.com:80", deadline=clock() + 25):
        pass

    assert slots.attempts > 2 and 3 <= sum(clock.slept) < 10
    assert max(clock.slept) <= 1.0  # polls back off to at most a second


def test_a_host_busy_for_the_whole_wait_is_a_transient_error_and_holds_nothing() -> None:
    clock = Clock()
    slots = FakeSlots(clock, busy=2)

    gate = gate_over(slots, clock, max_wait=5)
    with (pytest.raises(TransientError, match=r"host busy: 2 fetch\(es\) of example.com:80"),
          gate.slot("example.com:80", deadline=clock() + 25)):
        pytest.fail("no slot was free")

    assert 5 <= sum(clock.slept) <= 5.001 and slots.given_back == []


def test_the_wait_never_passes_the_attempts_deadline() -> None:
    clock = Clock()
    slots = FakeSlots(clock, busy=2)
    deadline = clock() + 2

    gate = gate_over(slots, clock, max_wait=10)
    with pytest.raises(TransientError), gate.slot("example.com:80", deadline=deadline):
        pass

    assert clock() <= deadline + 1e-9


def test_the_slot_is_given_back_when_the_fetch_fails() -> None:
    clock = Clock()
    slots = FakeSlots(clock)

    gate = gate_over(slots, clock)
    with pytest.raises(TransientError), gate.slot("example.com:80", deadline=clock() + 25):
        raise TransientError("the page answered 503")

    assert len(slots.given_back) == 1


def test_a_slot_that_cannot_be_given_back_does_not_fail_the_fetch() -> None:
    clock = Clock()

    class Unreleasable(FakeSlots):
        def give_back(self, lease: Lease) -> None:
            raise TransientError("DynamoDB throttled the delete")

    with gate_over(Unreleasable(clock), clock).slot("example.com:80", deadline=clock() + 25):
        fetched = True

    assert fetched  # the lease expires by itself; the page is not fetched again


def test_hosts_are_counted_by_host_and_port() -> None:
    assert host_key("http://Example.com/a") == "example.com:80"
    assert host_key("https://example.com/a") == "example.com:443"
    assert host_key("http://[::1]:8080/") == "[::1]:8080"


# -- per-URL headers and cookies -------------------------------------------------------------------


def test_an_entrys_headers_go_to_its_origin_but_not_across_a_redirect_to_another_host() -> None:
    routes: dict[str, Route] = {
        f"{SITE}/a": FakeResponse(302, {"location": f"{SITE}/b"}, b""),
        f"{SITE}/b": FakeResponse(302, {"location": "http://other.test/c"}, b""),
        "http://other.test/c": FakeResponse(200),
    }
    fetcher, transport = make_fetcher(routes)

    fetcher.fetch(f"{SITE}/a", session={"X-Token": "t0ken", "Cookie": "sid=1"})

    sent = [(hop.host, hop.target, hop.headers.get("X-Token"), hop.headers.get("Cookie"))
            for hop in transport.hops]
    assert sent == [("example.com", "/a", "t0ken", "sid=1"), ("example.com", "/b", "t0ken", "sid=1"),
                    ("other.test", "/c", None, None)]


def test_credentials_are_accepted_by_reference() -> None:
    options = FetchOptions(headers={"Authorization": SsmRef(ssm="/baton/auth")},
                           cookies={"session": SecretRef(secret="baton/session")})

    assert set(options.headers) == {"Authorization"} and set(options.cookies) == {"session"}


def test_literal_headers_and_cookies_become_request_headers() -> None:
    options = FetchOptions(headers={"Accept-Language": "fr"}, cookies={"a": "1", "b": "2"})
    values = SessionValues(parameter_prefix="/baton/", secret_prefix="baton/", ttl=60)

    assert values.headers(options) == {"Accept-Language": "fr", "Cookie": "a=1; b=2"}
    assert values.headers(None) == {}


@pytest.mark.parametrize(("options", "complaint"), [
    ({"headers": {"Host": "evil.test"}}, "header Host cannot be set"),
    ({"headers": {"content-length": "0"}}, "cannot be set"),
    ({"headers": {"Cookie": "a=1"}}, "cannot be set"),
    ({"headers": {"User-Agent": "browser"}}, "cannot be set"),
    ({"headers": {"X Token": "1"}}, "not an HTTP token"),
    ({"headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
    ({"headers": {"X-A": "1\r\nHost: evil.test"}}, "control character"),
    ({"headers": {"X-A": "x" * 5000}}, "longer than 4096"),
    ({"cookies": {"sid": "a; admin=1"}}, "semicolon"),
    ({"cookies": {"s id": "1"}}, "not an HTTP token"),
    ({"headers": {f"X-{i}": "1" for i in range(21)}}, "more than 20"),
    ({"headers": {"X-A": {"ssm": "relative/name"}}}, "pattern"),
    ({"headers": {"Authorization": "Bearer abc"}}, "Authorization looks like a credential"),
    ({"headers": {"X-Api-Key": "abc"}}, "looks like a credential"),
    ({"headers": {"X-Site-Token": "abc"}}, "looks like a credential"),
    ({"cookies": {"session": "abc"}}, "cookie session looks like a credential"),
    ({"headers": {"X-A": {"vault": "/x"}}}, "headers.X-A"),
])
def test_fetch_options_refuse_what_would_break_or_redirect_a_request(options, complaint) -> None:
    with pytest.raises(ValidationError, match=complaint):
        FetchOptions.model_validate(options)


def test_references_travel_as_references_in_every_engines_input() -> None:
    options = FetchOptions(headers={"X-Token": SsmRef(ssm="/baton/site-token")})
    request = RunRequest(run_id="r1", urls=["http://a.test/", "http://b.test/"],
                         options={"http://b.test/": options})

    items = request.state_machine_items()  # what the state machine's Map reads from S3

    assert [item["options"] for item in items] == [
        None, {"headers": {"X-Token": {"ssm": "/baton/site-token"}}, "cookies": {}, "robots": True}]
    scrape_request = ScrapeRequest.model_validate(
        {"run_id": "r1", "url": "http://b.test/", "options": items[1]["options"]})
    assert scrape_request.options == options
    assert ScrapeRequest.model_validate(
        {"run_id": "r1", "url": "http://a.test/", "options": None}).options is None


def test_secret_names_are_read_from_arns_for_the_prefix_check() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:baton/site-AbCdEf"
    assert secret_name(arn) == "baton/site-AbCdEf"
    assert secret_name("baton/site") == "baton/site"


def test_a_reference_outside_the_prefix_is_refused_before_any_aws_call() -> None:
    values = SessionValues(parameter_prefix="/baton/", secret_prefix="baton/", ttl=60,
                           ssm=object(), secrets=object())  # any call would fail loudly

    with pytest.raises(PermanentError, match="ssm:/other/token is outside the scraper's reach"):
        values.value(SsmRef(ssm="/other/token"))


# -- the use case ----------------------------------------------------------------------------------


@dataclass
class Stored:
    keys: list[str] = field(default_factory=list)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.keys.append(key)


def polite(routes: dict[str, Route], clock: Clock, slots: FakeSlots | None = None
           ) -> tuple[Fetcher, Politeness, FakeTransport]:
    fetcher, transport = make_fetcher(routes, clock=clock)
    return fetcher, Politeness(
        gate=gate_over(slots or FakeSlots(clock), clock),
        robots=Robots(robots_fetcher(fetcher, transport), ttl=3600, clock=clock),
        session=SessionValues(parameter_prefix="/baton/", secret_prefix="baton/", ttl=60),
    ), transport


DISALLOW_PRIVATE = "User-agent: *\nDisallow: /private\n"


def test_a_page_robots_txt_disallows_is_not_fetched() -> None:
    clock = Clock()
    fetcher, politeness, transport = polite(
        {f"{SITE}/robots.txt": robots_file(DISALLOW_PRIVATE)}, clock)
    stored = Stored()

    with pytest.raises(PermanentError, match=r"RobotsDisallowed: .*Disallow: /private"):
        scrape(ScrapeRequest(run_id="r", url=f"{SITE}/private/page"),  # type: ignore[arg-type]
               fetcher=fetcher, raw_store=stored, politeness=politeness)

    assert [hop.target for hop in transport.hops] == ["/robots.txt"] and stored.keys == []
    assert len(politeness.gate.store.given_back) == 1  # type: ignore[union-attr]


def test_an_entry_that_opts_out_of_robots_txt_is_fetched_with_its_headers() -> None:
    clock = Clock()
    fetcher, politeness, transport = polite(
        {f"{SITE}/robots.txt": robots_file(DISALLOW_PRIVATE), f"{SITE}/private/page":
         FakeResponse(200)}, clock)
    options = FetchOptions(headers={"X-Site": "1"}, cookies={"lang": "fr"}, robots=False)

    page = scrape(ScrapeRequest(run_id="r", url=f"{SITE}/private/page", options=options),  # type: ignore[arg-type]
                  fetcher=fetcher, raw_store=Stored(), politeness=politeness)

    assert page.status_code == 200
    (hop,) = transport.hops  # robots.txt was not asked for
    assert (hop.headers["X-Site"], hop.headers["Cookie"]) == ("1", "lang=fr")


def test_a_slot_is_held_for_robots_txt_and_the_page_and_the_wait_shortens_the_fetch() -> None:
    clock = Clock()
    slots = FakeSlots(clock, busy=2, free_at=clock() + 4)
    fetcher, politeness, transport = polite(
        {f"{SITE}/robots.txt": FakeResponse(404, dict(TEXT), b""), f"{SITE}/page":
         FakeResponse(200)}, clock, slots)
    start = clock()

    scrape(ScrapeRequest(run_id="r", url=f"{SITE}/page"),  # type: ignore[arg-type]
           fetcher=fetcher, raw_store=Stored(), politeness=politeness)

    assert [host for host, _ in slots.taken] == ["example.com:80"] and len(slots.given_back) == 1
    # One deadline for the attempt: the hops had what the wait left of the 25 s.
    assert all(hop.time_left == pytest.approx(start + 25 - clock()) for hop in transport.hops)
    assert transport.hops[0].time_left < 25 - 4 + 1e-9


# -- every engine hands the scraper each URL's options, as it does its validators ------------------

A_URL, B_URL = "http://a.test/", "http://b.test/"
OPTIONS = FetchOptions(headers={"X-Token": SsmRef(ssm="/baton/site-token")}, robots=False)


class RecordingSteps(FakeSteps):
    """FakeSteps remembering the options each scraper call received."""

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[str, object] = {}

    def scraper(self, payload: dict[str, object], url: str) -> dict[str, object]:
        self.options[url] = payload.get("options")
        return super().scraper(payload, url)


def options_request() -> RunRequest:
    return RunRequest(run_id="run-1", urls=[A_URL, B_URL], options={B_URL: OPTIONS})


EXPECTED_OPTIONS = {A_URL: None, B_URL: OPTIONS.model_dump(mode="json")}


def test_the_orchestrator_passes_each_urls_options_to_the_scraper() -> None:
    steps = RecordingSteps()

    run_orchestrator(options_request(), steps)

    assert steps.options == EXPECTED_OPTIONS


def test_the_state_machine_passes_each_urls_options_to_the_scraper() -> None:
    definition = json.loads(ASL.read_text())
    steps = RecordingSteps()

    run_state_machine(definition, [], request=options_request(), steps=steps)

    assert steps.options == EXPECTED_OPTIONS


def test_the_choreography_puts_each_urls_options_in_its_page_request() -> None:
    client = FakeEventsClient()

    start_choreography(options_request(), BUS, FakeRuns(), client)

    sent = {json.loads(put["Detail"])["metadata"]["url"]: json.loads(put["Detail"])["data"]
            for put in client.calls[0]}
    assert {url: data.get("options") for url, data in sent.items()} == EXPECTED_OPTIONS


def test_a_redirect_into_a_disallowed_path_is_not_followed() -> None:
    clock = Clock()
    fetcher, politeness, transport = polite({
        f"{SITE}/robots.txt": robots_file(DISALLOW_PRIVATE),
        f"{SITE}/old": FakeResponse(301, {"location": "/private/new"}, b""),
        "http://other.test/robots.txt": robots_file("User-agent: *\nDisallow: /\n"),
        f"{SITE}/away": FakeResponse(302, {"location": "http://other.test/page"}, b""),
    }, clock)

    for path, rule in (("/old", "Disallow: /private"), ("/away", "other.test/robots.txt")):
        with pytest.raises(PermanentError, match=f"RobotsDisallowed: .*{rule}"):
            scrape(ScrapeRequest(run_id="r", url=SITE + path),  # type: ignore[arg-type]
                   fetcher=fetcher, raw_store=Stored(), politeness=politeness)

    assert "/private/new" not in [hop.target for hop in transport.hops]
    assert ("other.test", "/page") not in [(hop.host, hop.target) for hop in transport.hops]
