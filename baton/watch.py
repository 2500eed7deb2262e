"""`baton watch add|remove|list|import`: the monitor's watchlist, kept in the deployed stack.

A watchlist file is the format of examples/sample-watchlist.txt, one URL per line, plus optional
columns after the URL: a label (the rest of the line) and per-URL thresholds as
``review=0.4`` / ``block=0.7`` tokens::

    # comments start with '#' at the start of a line or after a space
    http://127.0.0.1:8765/pages/garden   Garden page
    http://127.0.0.1:8765/pages/rant     Rant  review=0.3 block=0.6   # stricter than the default

and the URL's fetch options: ``header:NAME=VALUE`` and ``cookie:NAME=VALUE`` (repeatable), where
VALUE is a literal, ``ssm:/baton/NAME`` (an SSM parameter) or ``secret:baton/NAME`` (a Secrets
Manager secret): secrets are given by reference and read by the scraper when it fetches, so the
watchlist never holds them in clear; and ``robots=ignore`` to opt the URL out of robots.txt::

    http://127.0.0.1:8765/members/report  Report  header:X-Site-Token=ssm:/baton/site-token

Any bad line fails the whole file, naming every bad line, so nothing half-read is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from baton.errors import BatonError
from pipeline.models import FetchOptions, SecretRef, SessionValue, SsmRef, url_problem
from pipeline.monitor_models import LABEL_MAX, WatchEntry
from pipeline.watchlist import UnknownUrls, WatchlistTable

# Stack output naming the watchlist table (template.yaml's WatchlistTable).
TABLE_OUTPUT = "WatchlistTableName"
_COMMENT = re.compile(r"(?:^|\s)#")
_THRESHOLD = re.compile(r"(review|block)=(\S*)")
_SESSION = re.compile(r"(header|cookie):(\S*)")
REFERENCE_KINDS = {"ssm:": "ssm", "secret:": "secret"}
ROBOTS_OPT_OUT = "robots=ignore"


def session_value(text: str) -> SessionValue:
    """``ssm:/baton/x`` → {"ssm": ...}, ``secret:baton/x`` → {"secret": ...}, else the literal."""
    for prefix, kind in REFERENCE_KINDS.items():
        if text.startswith(prefix):
            reference = {kind: text.removeprefix(prefix)}
            return SsmRef.model_validate(reference) if kind == "ssm" else \
                SecretRef.model_validate(reference)
    return text


def name_value(text: str) -> tuple[str, SessionValue]:
    """``NAME=VALUE`` as a header's or cookie's name and value (see session_value)."""
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise ValueError(f"{text!r}: expected NAME=VALUE")
    try:
        return name, session_value(value)
    except ValidationError as error:
        raise ValueError(f"{text!r}: not a valid reference ({error.errors()[0]['msg']})") from None


def fetch_options(headers: Sequence[tuple[str, SessionValue]] = (),
                  cookies: Sequence[tuple[str, SessionValue]] = (),
                  robots: bool = True) -> FetchOptions | None:
    """The fetch options of an entry (None: the defaults); ValueError saying what is wrong."""
    for kind, pairs in (("header", headers), ("cookie", cookies)):
        names = [name.lower() for name, _ in pairs]
        if len(set(names)) < len(names):
            raise ValueError(f"a {kind} is given twice")
    try:
        options = FetchOptions(headers=dict(headers), cookies=dict(cookies), robots=robots)
    except ValidationError as error:
        raise ValueError("; ".join(problem["msg"].removeprefix("Value error, ")
                                   for problem in error.errors())) from None
    return None if options.is_default else options


def describe_options(options: FetchOptions | None) -> str:
    """A short account of an entry's fetch options for the list (names and kinds, no values)."""
    if options is None:
        return ""
    parts = [f"{name}({_kind(value)})" for name, value in options.headers.items()]
    parts += [f"cookie {name}({_kind(value)})" for name, value in options.cookies.items()]
    if not options.robots:
        parts.append("robots ignored")
    return ", ".join(parts)


def _kind(value: SessionValue) -> str:
    return "literal" if isinstance(value, str) else value.describe()


@dataclass(frozen=True)
class WatchLine:
    """One URL line of a watchlist file, before it becomes an entry."""

    number: int
    url: str
    label: str | None = None
    review_threshold: float | None = None
    block_threshold: float | None = None
    options: FetchOptions | None = None

    def entry(self, added_at: datetime) -> WatchEntry:
        return WatchEntry(url=self.url, label=self.label, review_threshold=self.review_threshold,
                          block_threshold=self.block_threshold, added_at=added_at,
                          options=self.options)


def parse_line(number: int, line: str) -> WatchLine | str | None:
    """A line's URL, label and thresholds; None for a blank or comment line; str: what is wrong."""
    text = _COMMENT.split(line, maxsplit=1)[0].strip()
    if not text:
        return None
    url, *columns = text.split()
    if (why := url_problem(url)) is not None:
        return f"{url!r}: {why}"
    thresholds: dict[str, float] = {}
    words: list[str] = []
    session: dict[str, list[tuple[str, SessionValue]]] = {"header": [], "cookie": []}
    robots = True
    for column in columns:
        if column == ROBOTS_OPT_OUT:
            robots = False
            continue
        if (option := _SESSION.fullmatch(column)) is not None:
            try:
                session[option[1]].append(name_value(option[2]))
            except ValueError as error:
                return f"{option[1]} {error}"
            continue
        match = _THRESHOLD.fullmatch(column)
        if match is None:
            words.append(column)
            continue
        name, value = match[1], match[2]
        try:
            number_value = float(value)
        except ValueError:
            return f"{column!r}: the {name} threshold must be a number between 0 and 1"
        if not 0.0 <= number_value <= 1.0:
            return f"{column!r}: the {name} threshold must be between 0 and 1"
        thresholds[name] = number_value
    review, block = thresholds.get("review"), thresholds.get("block")
    if review is not None and block is not None and review > block:
        return f"the review threshold ({review}) must not exceed the block threshold ({block})"
    label = " ".join(words) or None
    if label and len(label) > LABEL_MAX:
        return f"the label is longer than {LABEL_MAX} characters"
    try:
        options = fetch_options(session["header"], session["cookie"], robots)
    except ValueError as error:
        return str(error)
    return WatchLine(number, url, label, review, block, options)


@dataclass(frozen=True)
class Scanned:
    """A watchlist's lines, read once: each URL's first line, the lines that give a URL again and
    the bad lines' problems (both by line number)."""

    first: dict[str, tuple[int, WatchLine]]
    again: dict[int, str]
    problems: dict[int, str]

    @property
    def lines(self) -> list[WatchLine]:
        """Each URL's first line, in the file's order."""
        return [line for _, line in self.first.values()]


def listed(problems: dict[int, str]) -> str:
    """Problems by line number, a line each, in the file's order."""
    return "\n".join(f"  line {number}: {problem}" for number, problem in sorted(problems.items()))


def scan_watchlist(text: str) -> Scanned:
    """Read every line of a watchlist. A URL given again is not a bad line here: `baton watch
    import` refuses it, `baton run` runs it once."""
    scanned = Scanned({}, {}, {})
    for number, line in enumerate(text.splitlines(), start=1):
        parsed = parse_line(number, line)
        if isinstance(parsed, str):
            scanned.problems[number] = parsed
        elif parsed is not None and parsed.url in scanned.first:
            scanned.again[number] = parsed.url
        elif parsed is not None:
            scanned.first[parsed.url] = (number, parsed)
    return scanned


def parse_watchlist(text: str, source: str = "the watchlist") -> list[WatchLine]:
    """Every URL line of a watchlist; a BatonError naming every bad line if there is one."""
    scanned = scan_watchlist(text)
    bad = scanned.problems | {number: f"{url!r} is already on line {scanned.first[url][0]}"
                              for number, url in scanned.again.items()}
    lines = scanned.lines
    if bad:
        raise BatonError(f"{source} has {len(bad)} bad line(s); nothing was imported:\n"
                         + listed(bad))
    if not lines:
        raise BatonError(f"{source} has no URL; nothing was imported")
    return lines


def read_watchlist_file(path: Path) -> list[WatchLine]:
    """The URL lines of a watchlist file (see parse_watchlist)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise BatonError(f"cannot read the watchlist {path}: {error}") from error
    return parse_watchlist(text, str(path))


@dataclass(frozen=True)
class Imported:
    added: list[str]
    updated: list[str]


class Watch:
    """The watchlist commands over one WatchlistTable."""

    def __init__(self, table: WatchlistTable,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.table = table
        self.now = now

    def add(self, url: str, label: str | None = None, review_threshold: float | None = None,
            block_threshold: float | None = None,
            options: FetchOptions | None = None) -> tuple[WatchEntry, bool]:
        """Watch ``url`` (or replace its label, thresholds and fetch options); (entry, True
        when it is new)."""
        if (why := url_problem(url)) is not None:
            raise BatonError(f"cannot watch {url!r}: {why}")
        existing = self.table.get_many([url]).get(url)
        try:
            entry = WatchEntry(url=url, label=label, review_threshold=review_threshold,
                               block_threshold=block_threshold, options=options,
                               added_at=existing.added_at if existing else self.now())
        except ValidationError as error:
            raise BatonError(f"cannot watch {url!r}: " + "; ".join(
                problem["msg"] for problem in error.errors())) from error
        self.table.put_many([entry])
        return entry, existing is None

    def remove(self, urls: Sequence[str]) -> list[str]:
        """Stop watching ``urls``: all of them, or none if one is not watched."""
        try:
            return self.table.remove(urls)
        except UnknownUrls as error:
            raise BatonError("not in the watchlist, so nothing was removed: "
                             + ", ".join(error.urls)
                             + "\n(`baton watch list` shows what is watched)") from error

    def entries(self) -> list[WatchEntry]:
        """Everything watched, oldest first."""
        return self.table.entries()

    def import_lines(self, lines: Sequence[WatchLine]) -> Imported:
        """Add or update every line's entry (a URL already watched keeps when it was added)."""
        existing = self.table.get_many(line.url for line in lines)
        now = self.now()
        entries = [line.entry(existing[line.url].added_at if line.url in existing else now)
                   for line in lines]
        self.table.put_many(entries)
        return Imported(added=[line.url for line in lines if line.url not in existing],
                        updated=[line.url for line in lines if line.url in existing])

    def import_file(self, path: Path) -> Imported:
        """Import a watchlist file: every line, or nothing if one is bad."""
        return self.import_lines(read_watchlist_file(path))


def watchlist_table(target: str, stack: str) -> WatchlistTable:
    """The deployed stack's watchlist table."""
    from baton import deploy
    from baton.targets import client

    outputs = deploy.stack_outputs(target, stack)
    if TABLE_OUTPUT not in outputs:
        raise BatonError(f"stack {stack} has no watchlist table (output {TABLE_OUTPUT}); "
                         "deploy the current template.yaml first")
    return WatchlistTable(outputs[TABLE_OUTPUT], client("dynamodb", target))


def entries_table(entries: Sequence[WatchEntry]) -> str:
    """The watchlist as a text table."""
    if not entries:
        return "The watchlist is empty. Add a URL with: baton watch add URL [--label LABEL]"
    rows = [("URL", "label", "review", "block", "added", "fetch options")]
    for entry in entries:
        rows.append((
            entry.url,
            entry.label or "",
            "" if entry.review_threshold is None else f"{entry.review_threshold:g}",
            "" if entry.block_threshold is None else f"{entry.block_threshold:g}",
            entry.added_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            describe_options(entry.options),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    return "\n".join([*lines, f"{len(entries)} URL(s) watched"])
