"""robots.txt (RFC 9309), honoured before every page fetch unless the entry opts out.

Parsing and matching are pure. The group is the one naming our product token (the user agent
up to its first "/", case-insensitive), else ``*``; groups naming the same agent are merged.
Rules match the path and query by prefix, with ``*`` (any characters) and a final ``$`` (end);
the longest matching pattern decides and Allow wins a tie; ``/robots.txt`` itself is always
allowed. What a fetch of robots.txt means (RFC 9309 section 2.3.1, as Google applies it):

- 2xx: its rules;
- 4xx (404 most often): there are no rules, everything is allowed;
- 5xx, 429, a refused or reset connection ("unreachable"): everything is disallowed *for a
  while*. The page fails with a TransientError (the engines retry it, the monitor sees the page
  down) and the answer is kept ``UNREACHABLE_TTL_SECONDS`` only, so a struggling server is asked
  for its robots.txt once a minute per warm scraper rather than once per page. Running out of the
  attempt's time while reading it fails that attempt only (the time may have gone to the wait
  for a slot): nothing is kept;
- anything the fetcher refuses for good (not text, over 512 KiB, a blocked redirect): no usable
  rules, so allowed, as for 4xx; the page's own fetch applies every guard again.

Every redirect is checked too, against the robots.txt of the place it leads to.
robots.txt is fetched under the pages' guards (``robots_fetcher``: the same SSRF guard, allowlist
and deadline; text types; a 512 KiB cap), inside the page's attempt and host slot, and kept per
origin in the warm process for ``ttl`` seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit

from pipeline.errors import PermanentError, TransientError
from pipeline.observability import logger
from scraper.fetch import Fetcher, Transport, host_port, origin

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB
ROBOTS_CONTENT_TYPES = frozenset({"text/plain", "text/html", "application/octet-stream"})
UNREACHABLE_TTL_SECONDS = 60.0
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_KNOWN_ORIGINS = 1_000
RULE_KINDS = {"allow": True, "disallow": False}


# A disallowed page is a PermanentError whose message starts with this name. Not a subclass:
# Lambda reports an error by its class name and the engines decide on that name alone, so a
# new name would be neither retried nor final (pipeline.errors, pipeline.policy).
DISALLOWED = "RobotsDisallowed"


@dataclass(frozen=True)
class Rule:
    """One Allow or Disallow line of the group that applies."""

    allow: bool
    pattern: str
    line: int
    regex: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def of(cls, allow: bool, pattern: str, line: int) -> Rule:
        """The rule, with its pattern compiled (``*`` any characters, a final ``$`` the end)."""
        anchored = pattern.endswith("$")
        body = _normalise(pattern[:-1] if anchored else pattern)
        regex = ".*".join(re.escape(part) for part in body.split("*"))
        return cls(allow, pattern, line, re.compile(regex + (r"\Z" if anchored else ""), re.S))

    def describe(self) -> str:
        """The rule as written, with its line number."""
        return f"{'Allow' if self.allow else 'Disallow'}: {self.pattern} (line {self.line})"


@dataclass(frozen=True)
class RobotsRules:
    """The rules of one robots.txt that apply to our user agent."""

    source: str  # the robots.txt URL, for messages
    rules: tuple[Rule, ...] = ()
    group: str = "*"  # the user-agent line of the group that applies

    def deciding_rule(self, url: str) -> Rule | None:
        """The rule that decides for ``url`` (longest pattern, Allow on a tie), or None."""
        parts = urlsplit(url)
        path = _normalise((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if path == "/robots.txt":
            return None
        matching = [rule for rule in self.rules if rule.regex.match(path)]
        return max(matching, key=lambda rule: (len(rule.pattern), rule.allow), default=None)

    def check(self, url: str) -> None:
        """Raise a PermanentError ``RobotsDisallowed: …`` naming the rule, when the rules
        disallow ``url``."""
        rule = self.deciding_rule(url)
        if rule is not None and not rule.allow:
            raise PermanentError(
                f"{DISALLOWED}: {url} is disallowed by {self.source}, rule "
                f"'{rule.describe()}' of the group for user-agent {self.group}"
            )


def product_token(user_agent: str) -> str:
    """The user agent's product token: what robots.txt groups name (``baton-scraper``)."""
    return user_agent.split("/", 1)[0].split()[0].lower() if user_agent.strip() else "*"


def parse(text: str, source: str, agent: str) -> RobotsRules:
    """The rules of ``text`` that apply to the product token ``agent``."""
    groups: list[tuple[list[str], list[Rule]]] = []
    in_rules = True  # the next user-agent line starts a new group
    for number, raw in enumerate(text.splitlines(), start=1):
        name, _, value = raw.split("#", 1)[0].partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "user-agent":
            if in_rules:
                groups.append(([], []))
                in_rules = False
            groups[-1][0].append(value.split("/", 1)[0].strip().lower())
        elif name in RULE_KINDS and groups:
            in_rules = True
            if value:  # an empty Disallow disallows nothing
                groups[-1][1].append(Rule.of(RULE_KINDS[name], value, number))
        # Other lines (Sitemap, Crawl-delay, junk) neither end a group nor add a rule.
    for wanted in (agent, "*"):
        rules = [rule for agents, group in groups if wanted in agents for rule in group]
        if any(wanted in agents for agents, _ in groups):
            return RobotsRules(source, tuple(rules), wanted)
    return RobotsRules(source)


class Robots:
    """robots.txt per origin, fetched on first use and kept ``ttl`` seconds in the warm process."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetcher = fetcher
        self.ttl = ttl
        self.clock = clock
        self.agent = product_token(fetcher.policy.user_agent)
        self._known: dict[str, tuple[float, RobotsRules | str]] = {}

    def check(self, url: str, deadline: float) -> None:
        """Raise a PermanentError (RobotsDisallowed) if robots.txt disallows ``url``, a
        TransientError while it is unreachable; fetch it first if unknown (or too old)."""
        origin = _origin(url)
        known = self._known.get(origin)
        if known is None or known[0] <= self.clock():
            known = self._fetch(origin, deadline)
            self._known.pop(origin, None)
            if len(self._known) >= MAX_KNOWN_ORIGINS:  # a warm scraper's memory stays bounded
                del self._known[next(iter(self._known))]  # the longest known
            self._known[origin] = known
        rules = known[1]
        if isinstance(rules, str):
            raise TransientError(
                f"robots.txt of {origin} is unreachable ({rules}): {url} is not fetched until it "
                "can be read (RFC 9309: an unreachable robots.txt disallows everything)"
            )
        rules.check(url)

    def _fetch(self, origin: str, deadline: float) -> tuple[float, RobotsRules | str]:
        source = f"{origin}/robots.txt"
        try:
            result = self.fetcher.fetch(source, deadline=deadline, client_errors=True)
        except TransientError as error:
            if self.clock() >= deadline:
                # The attempt ran out (perhaps waiting for a slot), which says nothing of the
                # server: this attempt fails, the next one asks again.
                raise TransientError(f"robots.txt of {origin} could not be read before the "
                                     f"attempt's deadline: {error}") from error
            return self.clock() + UNREACHABLE_TTL_SECONDS, str(error)
        except PermanentError as error:
            logger.warning("robots.txt unusable: allowing all", robots=source, error=str(error))
            return self.clock() + self.ttl, RobotsRules(source)
        if result.body is None:  # 4xx: no rules
            return self.clock() + self.ttl, RobotsRules(source)
        try:
            text = result.body.decode(result.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know: robots.txt is UTF-8 (RFC 9309)
            text = result.body.decode("utf-8", errors="replace")
        return self.clock() + self.ttl, parse(text, source, self.agent)


def robots_fetcher(pages: Fetcher, transport: Transport) -> Fetcher:
    """A fetcher for robots.txt: the pages' guards and clock, text types, a 512 KiB cap."""
    policy = replace(pages.policy, allowed_content_types=ROBOTS_CONTENT_TYPES,
                     max_bytes=min(pages.policy.max_bytes, ROBOTS_MAX_BYTES))
    return Fetcher(policy, transport, resolver=pages.resolver, clock=pages.clock)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, the port only when it is not the default."""
    scheme, host, port = origin(url)
    netloc = host_port(host, port)
    if port == DEFAULT_PORTS.get(scheme):
        netloc = netloc.rsplit(":", 1)[0]
    return f"{scheme}://{netloc}"


def _normalise(path: str) -> str:
    # Percent-encoding is compared decoded (RFC 9309 2.2.2: "%41" and "A" are the same path),
    # except for "/" and "?" which would change the path's structure.
    return unquote(path.replace("%2F", "%252F").replace("%2f", "%252F").replace("%3F", "%253F")
                   .replace("%3f", "%253F"))
