"""The real HTTP transport against the sample site: it connects to checked addresses only."""

from __future__ import annotations

import pytest

from baton.site import SampleSite
from pipeline.errors import PermanentError
from scraper.fetch import Fetcher, FetchPolicy
from scraper.transport import HttpTransport


def test_the_connection_goes_to_the_checked_address_not_a_fresh_lookup(
    sample_site: SampleSite,
) -> None:
    # "site.invalid" cannot resolve through the system resolver: the fetch only works if the
    # transport connects to the address the guard checked instead of resolving the name again.
    port = sample_site.server_address[1]
    fetcher = Fetcher(
        FetchPolicy(allowed_hosts=frozenset({f"site.invalid:{port}"})),
        HttpTransport(),
        resolver=lambda host, _port: ["127.0.0.1"],
    )

    result = fetcher.fetch(f"http://site.invalid:{port}/faults/moved")

    assert (result.status_code, result.final_url) == (200, f"http://site.invalid:{port}/pages/garden")


def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    sample_site: SampleSite,
) -> None:
    port = sample_site.server_address[1]
    fetcher = Fetcher(FetchPolicy(), HttpTransport(), resolver=lambda host, _port: ["127.0.0.1"])

    with pytest.raises(PermanentError, match=r"blocked address.*127\.0\.0\.1.*loopback"):
        fetcher.fetch(f"http://rebind.invalid:{port}/pages/garden")
