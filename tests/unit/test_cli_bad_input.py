"""Every verb answers bad input with one clear message and exit 2 (usage) or 1, never a traceback,
and before anything is started or contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

import baton.commands.common
import baton.deploy
import baton.targets
from baton.cli import main
from baton.errors import BatonError
from pipeline.monitor_models import LABEL_MAX

GOOD = "http://127.0.0.1:8765/pages/garden"
LONG_LABEL = "x" * (LABEL_MAX + 1)

# (argv, exit code, a fragment of the message). "{tmp}" is a directory of prepared files:
# missing.txt does not exist; the others are named by what is wrong with them.
CASES = [
    # up, site: ports
    (["up", "--port", "0"], 2, "between 1 and 65535"),
    (["up", "--port", "99999"], 2, "between 1 and 65535"),
    (["up", "--port=-1"], 2, "between 1 and 65535"),
    (["site", "--port", "99999"], 2, "between 0 and 65535"),
    (["site", "--port=-80"], 2, "between 0 and 65535"),
    (["site", "--port", "http"], 2, "expected a whole number"),
    (["invoke", "scraper", "--endpoint-url", "http://x:1"], 1, "applies to the localstack and aws"),
    (["deploy", "--target", "localstack", "--endpoint-url", "notaurl"], 1, "invalid endpoint URL"),
    (["ui", "--port", "99999"], 2, "between 0 and 65535"),
    (["ui", "--stack-name", "no spaces please"], 2, "stack"),
    (["history", "bad id!", "--timeline"], 2, "not a run id"),
    # build, deploy, destroy: template, parameters, target, stack name
    (["build", "--template", "{tmp}/missing.txt"], 2, "no such file"),
    (["build", "--template", "{tmp}"], 2, "is a directory"),
    (["deploy", "--template", "{tmp}/missing.txt"], 2, "no such file"),
    (["deploy", "--param", "ReviewThreshold"], 1, "KEY=VALUE"),
    (["deploy", "--param", "=0.5"], 1, "KEY=VALUE"),
    (["deploy", "--target", "mars"], 2, "invalid choice"),
    (["deploy", "--stack-name", ""], 2, "not a stack name"),
    (["destroy", "--stack-name", "my stack"], 2, "not a stack name"),
    (["destroy", "--stack-name", "9lives"], 2, "not a stack name"),
    (["destroy", "--stack-name", "s" * 129], 2, "not a stack name"),
    # invoke, logs: function, event, duration
    (["invoke", "lambada"], 2, "invalid choice"),
    (["invoke", "scraper", "--event", "{tmp}/missing.txt"], 1, "cannot read the event file"),
    (["invoke", "scraper", "--event", "{tmp}"], 1, "cannot read the event file"),
    (["invoke", "scraper", "--event", "{tmp}/bad.json"], 1, "invalid event JSON"),
    (["invoke", "scraper", "--event", "{tmp}/latin1.txt"], 1, "not UTF-8"),
    (["logs", "scraper", "--since", "10x"], 2, "expected a duration"),
    (["logs", "scraper", "--since=-5m"], 2, "expected a duration"),
    (["logs", "scraper", "--since", "0s"], 2, "more than 0"),
    (["logs", "scraper", "--since", "99999d"], 2, "at most 3650d"),
    (["logs", "scraper", "--since", ""], 2, "expected a duration"),
    # run: URLs, watchlist, concurrency, engine
    (["run", "--url", "http://[::1/"], 2, "Invalid IPv6 URL"),
    (["run", "--url", "http://[::1]:99999/"], 2, "Port out of range"),
    (["run", "--url", "http://example.com:port/"], 2, "Port could not be cast"),
    (["run", "--url", "ftp://example.com/"], 2, "only http and https"),
    (["run", "--url", ""], 2, "only http and https"),
    (["run", "--url", "http:///path"], 2, "no host name"),
    (["run"], 1, "no URLs to run"),
    (["run", "--watchlist", "{tmp}/missing.txt"], 2, "no such file"),
    (["run", "--watchlist", "{tmp}/ipv6.txt"], 1, "Invalid IPv6 URL"),
    (["run", "--watchlist", "{tmp}/latin1.txt"], 1, "cannot read the watchlist"),
    (["run", "--watchlist", "{tmp}/comments.txt"], 1, "no URLs to run"),
    (["run", "--watchlist", "{tmp}/too-many.txt"], 1, "at most 10000 items"),
    (["run", "--url", GOOD, "--max-concurrency", "0"], 2, "between 1 and"),
    (["run", "--url", GOOD, "--max-concurrency=-4"], 2, "between 1 and"),
    (["run", "--url", GOOD, "--max-concurrency", "100000"], 2, "between 1 and"),
    (["run", "--url", GOOD, "--max-concurrency", "2.5"], 2, "expected a whole number"),
    (["run", "--url", GOOD, "--engine", "cron"], 2, "invalid choice"),
    # executions, history, check, alerts: limits, run id
    (["executions", "--limit", "0"], 2, "between 1 and 1000"),
    (["executions", "--limit", "1001"], 2, "between 1 and 1000"),
    (["executions", "--engine", "lambda"], 2, "invalid choice"),
    (["history"], 2, "RUN_ID"),
    (["history", ""], 2, "is not a run id"),
    (["history", "run 1"], 2, "is not a run id"),
    (["history", "r" * 81], 2, "is not a run id"),
    (["check"], 2, "RUN_ID"),
    (["check", ""], 2, "is not a run id"),
    (["check", "run 1", "--json"], 2, "is not a run id"),
    (["redrive"], 2, "RUN_ID"),
    (["redrive", "run 1"], 2, "is not a run id"),
    (["redrive", "run-1", "--stack-name", "no spaces"], 2, "stack"),
    (["check", "r" * 81], 2, "is not a run id"),
    (["check", "run-1", "--stack-name", "9lives"], 2, "not a stack name"),
    (["alerts", "--limit=-1"], 2, "between 1 and 1000"),
    (["alerts", "--limit", "many"], 2, "expected a whole number"),
    # watch: URLs, thresholds, labels, files
    (["watch"], 2, "ACTION"),
    (["watch", "add", "http://[::1/"], 2, "Invalid IPv6 URL"),
    (["watch", "add", "example.com"], 2, "only http and https"),
    (["watch", "add", GOOD, "--review", "1.5"], 2, "between 0 and 1"),
    (["watch", "add", GOOD, "--block", "nan"], 2, "between 0 and 1"),
    (["watch", "add", GOOD, "--block", "high"], 2, "expected a number"),
    (["watch", "add", GOOD, "--review", "0.8", "--block", "0.2"], 1, "must not exceed"),
    (["watch", "add", GOOD, "--label", ""], 2, "must not be empty"),
    (["watch", "add", GOOD, "--label", LONG_LABEL], 1, f"at most {LABEL_MAX}"),
    (["watch", "add", GOOD, "--header", "Host=example.org"], 1, "cannot be set per entry"),
    (["watch", "add", GOOD, "--header", "X-Token"], 2, "expected NAME=VALUE"),
    (["watch", "add", GOOD, "--header", "X-Token=ssm:baton/relative"], 2, "not a valid reference"),
    (["watch", "add", GOOD, "--header", "Bad Name=1"], 1, "not an HTTP token"),
    (["watch", "add", GOOD, "--cookie", "lang=a;b"], 1, "semicolon"),
    (["watch", "add", GOOD, "--header", "X-Api-Key=abc"], 1, "give its value by reference"),
    (["watch", "remove", ""], 2, "must not be empty"),
    (["watch", "import", "{tmp}/missing.txt"], 2, "no such file"),
    (["watch", "import", "{tmp}/ipv6.txt"], 1, "Invalid IPv6 URL"),
    (["watch", "import", "{tmp}/latin1.txt"], 1, "cannot read the watchlist"),
    (["watch", "import", "{tmp}/comments.txt"], 1, "has no URL"),
    # monitor: schedule, engine, mode
    (["monitor", "--once", "--schedule", ""], 1, "empty"),
    (["monitor", "--once", "--schedule", "every day"], 1, "not a schedule expression"),
    (["monitor", "--once", "--schedule", "*/5 * * * *"], 1, "cron("),
    (["monitor", "--once", "--engine", "choreography"], 2, "invalid choice"),
    (["monitor"], 2, "one of the arguments --once --follow is required"),
]


class ReachedTheNetwork(BaseException):
    """Raised by the network entry points: a BaseException, so main() cannot turn it into an exit
    code and the test fails loudly."""


@pytest.fixture(autouse=True)
def _nothing_is_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ReachedTheNetwork(f"bad input reached the network: {args}")

    monkeypatch.setattr(baton.targets, "require_reachable", refuse)
    monkeypatch.setattr(baton.targets, "client", refuse)
    monkeypatch.setattr(baton.deploy, "client", refuse)
    monkeypatch.setattr(baton.commands.common, "probe_health", refuse)
    monkeypatch.setattr(baton.commands.common, "LocalCloud", refuse)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "bad.json").write_text('{"url": }')
    (tmp_path / "latin1.txt").write_bytes(f"{GOOD}   Caf\xe9 page\n".encode("latin-1"))
    (tmp_path / "ipv6.txt").write_text(f"{GOOD}\nhttp://[::1/pages/x\n")
    (tmp_path / "comments.txt").write_text("# nothing but comments\n\n")
    (tmp_path / "too-many.txt").write_text("".join(f"{GOOD}?p={n}\n" for n in range(10_001)))
    return tmp_path


def exit_code(argv: list[str]) -> int:
    """main()'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)


@pytest.mark.parametrize(("argv", "code", "says"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_clear_message_and_a_non_zero_exit(
        argv: list[str], code: int, says: str, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = exit_code([arg.replace("{tmp}", str(tmp)) for arg in argv])

    out, err = capsys.readouterr()
    assert result == code, err
    assert says in err
    assert "Traceback" not in out + err
    assert "unexpected error" not in err  # refused on purpose, not by the last-resort handler
    if code == 2:
        assert "usage: baton" in err


def test_an_unexpected_failure_is_one_line_naming_the_verb(monkeypatch, capsys) -> None:
    monkeypatch.delenv("BATON_DEBUG", raising=False)
    monkeypatch.setattr("baton.commands.status.LocalCloud",
                        lambda **_: (_ for _ in ()).throw(KeyError("state")))

    assert main(["status"]) == 1

    err = capsys.readouterr().err
    assert "baton status: unexpected error: KeyError: 'state'" in err
    assert "BATON_DEBUG=1" in err
    assert "Traceback" not in err


def test_batons_debug_variable_shows_the_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BATON_DEBUG", "1")
    monkeypatch.setattr("baton.commands.status.LocalCloud",
                        lambda **_: (_ for _ in ()).throw(KeyError("state")))

    assert main(["status"]) == 1

    assert "Traceback" in capsys.readouterr().err


def test_a_taken_port_for_the_site_is_a_clear_error(monkeypatch, capsys) -> None:
    def taken(argv: list[str]) -> int:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("baton.site.main", taken)

    assert main(["site", "--port", "8765"]) == 1

    assert "baton site: error: cannot serve on 127.0.0.1:8765: Address already in use" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_deploy_refuses_a_template_that_is_not_a_file_before_any_work(name, tmp_path) -> None:
    with pytest.raises(BatonError, match="no template at"):
        baton.deploy.deploy("aws", template_path=tmp_path / name, build_dir=tmp_path / "build")
