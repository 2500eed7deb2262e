"""The request guard of baton's local servers: what a web page or a rebinding name can send is refused."""

import pytest

from baton.httpguard import allowed_origins, refusal

PORT = 4566


@pytest.mark.parametrize("host", ["127.0.0.1:4566", "localhost:4566", "[::1]:4566", "LOCALHOST:4566",
                                  "127.0.0.1", "localhost"])
def test_a_loopback_host_without_origin_is_served(host):
    assert refusal({"Host": host}, PORT, frozenset()) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4566", "127.0.0.1:8080",
                                  "127.0.0.1.evil.example:4566", "0.0.0.0:4566"])
def test_another_host_is_refused(host):
    reason = refusal({"Host": host}, PORT, frozenset())

    assert reason is not None and repr(host) in reason


def test_a_request_without_host_is_refused():
    assert refusal({}, PORT, frozenset()) is not None


def test_an_origin_not_on_the_list_is_refused():
    reason = refusal({"Host": "127.0.0.1:4566", "Origin": "http://evil.example"}, PORT, frozenset())

    assert reason is not None and "http://evil.example" in reason and "BATON_ALLOWED_ORIGINS" in reason


def test_an_origin_on_the_list_is_served_and_header_names_ignore_case():
    headers = {"host": "localhost:4566", "ORIGIN": "http://console.example"}

    assert refusal(headers, PORT, frozenset({"http://console.example"})) is None
    assert refusal(headers, PORT, frozenset({"http://other.example"})) is not None


def test_the_list_comes_from_the_environment_and_is_empty_by_default(monkeypatch):
    monkeypatch.delenv("BATON_ALLOWED_ORIGINS", raising=False)
    assert allowed_origins() == frozenset()
    assert refusal({"Host": "127.0.0.1:4566", "Origin": "null"}, PORT) is not None

    monkeypatch.setenv("BATON_ALLOWED_ORIGINS", " http://a.example , http://b.example/ ,")
    assert allowed_origins() == frozenset({"http://a.example", "http://b.example"})
    assert refusal({"Host": "127.0.0.1:4566", "Origin": "http://b.example"}, PORT) is None
