"""The request guard of the local servers: other Hosts and Origins are refused."""

from __future__ import annotations

import pytest

from baton.httpguard import allowed_origins, refusal


@pytest.mark.parametrize("host", ["127.0.0.1:8766", "localhost:8766", "[::1]:8766", "127.0.0.1",
                                  "LOCALHOST:8766"])
def test_a_local_host_without_origin_is_served(host):
    assert refusal({"Host": host}, 8766, frozenset()) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8766", "127.0.0.1:9999",
                                  "127.0.0.1.evil.example:8766", ""])
def test_another_host_is_refused(host):
    reason = refusal({"Host": host}, 8766, frozenset())

    assert reason is not None and "Host" in reason


def test_a_foreign_origin_is_refused_whatever_the_header_case():
    reason = refusal({"host": "127.0.0.1:8766", "ORIGIN": "http://evil.example"}, 8766, frozenset())

    assert reason is not None and "evil.example" in reason


def test_an_allowed_origin_is_served(monkeypatch):
    monkeypatch.setenv("BATON_ALLOWED_ORIGINS", "http://127.0.0.1:3000, http://localhost:3000")

    assert allowed_origins() == frozenset({"http://127.0.0.1:3000", "http://localhost:3000"})
    assert refusal({"Host": "localhost:8766", "Origin": "http://localhost:3000"}, 8766) is None
    assert refusal({"Host": "localhost:8766", "Origin": "http://evil.example"}, 8766) is not None


def test_no_origin_is_allowed_by_default(monkeypatch):
    monkeypatch.delenv("BATON_ALLOWED_ORIGINS", raising=False)

    assert allowed_origins() == frozenset()
    assert refusal({"Host": "127.0.0.1:8766", "Origin": "http://127.0.0.1:8766"}, 8766) is not None
