"""A target that does not answer is reported with the endpoint tried and how to start it."""

import pytest

from baton import targets
from baton.errors import BatonError


def test_unreachable_local_cloud_names_endpoint_and_fix(monkeypatch):
    monkeypatch.setenv("BATON_PORT", "4999")
    monkeypatch.setattr(targets, "probe_health", lambda port, path="": None)

    with pytest.raises(BatonError) as failure:
        targets.require_reachable("local")

    assert "http://127.0.0.1:4999" in str(failure.value)
    assert "baton up --port 4999" in str(failure.value)


def test_unreachable_localstack_names_endpoint_and_fix(monkeypatch):
    monkeypatch.setattr(targets, "probe_health", lambda port, path="": None)

    with pytest.raises(BatonError) as failure:
        targets.require_reachable("localstack")

    assert ":4566" in str(failure.value)
    assert "localstack start" in str(failure.value)


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(BatonError, match="local, localstack, aws"):
        targets.endpoint("azure")
