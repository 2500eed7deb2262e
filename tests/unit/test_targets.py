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
    monkeypatch.delenv("BATON_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    monkeypatch.setattr(targets, "probe_url", lambda url, timeout=1.0: None)

    with pytest.raises(BatonError) as failure:
        targets.require_reachable("localstack")

    assert ":4566" in str(failure.value)
    assert "localstack start" in str(failure.value)


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(BatonError, match="local, localstack, aws"):
        targets.endpoint("azure")


@pytest.fixture
def no_endpoint(monkeypatch):
    """No endpoint from the environment, and none left set by a test."""
    for variable in ("BATON_ENDPOINT_URL", "LOCALSTACK_HOST"):
        monkeypatch.delenv(variable, raising=False)
    yield
    for target in targets.ENDPOINT_TARGETS:
        targets.use_endpoint_url(target, None)


def test_localstack_endpoint_defaults_to_localstack_clients_and_follows_localstack_host(
        no_endpoint, monkeypatch):
    assert str(targets.endpoint("localstack")).endswith(":4566")

    monkeypatch.setenv("LOCALSTACK_HOST", "127.0.0.1:4599")

    assert targets.endpoint("localstack") == "http://127.0.0.1:4599"


def test_baton_endpoint_url_wins_over_localstack_host_and_applies_to_aws(no_endpoint, monkeypatch):
    monkeypatch.setenv("LOCALSTACK_HOST", "127.0.0.1:4599")
    monkeypatch.setenv("BATON_ENDPOINT_URL", "http://127.0.0.1:4600/")

    assert targets.endpoint("localstack") == "http://127.0.0.1:4600"
    assert targets.endpoint("aws") == "http://127.0.0.1:4600"
    assert str(targets.endpoint("local")).startswith("http://127.0.0.1:")  # never redirected


def test_the_flag_wins_over_the_environment_and_reaches_the_clients(no_endpoint, monkeypatch):
    monkeypatch.setenv("BATON_ENDPOINT_URL", "http://127.0.0.1:4600")
    before = targets.client("sqs", "localstack")

    targets.use_endpoint_url("localstack", "https://ls.example:4443")

    assert targets.endpoint("localstack") == "https://ls.example:4443"
    assert targets.client("sqs", "localstack").meta.endpoint_url == "https://ls.example:4443"
    assert before.meta.endpoint_url == "http://127.0.0.1:4600"


def test_aws_without_an_endpoint_uses_boto3s_own_resolution(no_endpoint):
    assert targets.endpoint("aws") is None


@pytest.mark.parametrize("url", ["127.0.0.1:4566", "ftp://host", "http://", "http://host:port"])
def test_a_malformed_endpoint_url_is_refused(no_endpoint, url):
    with pytest.raises(BatonError, match="invalid endpoint URL"):
        targets.use_endpoint_url("localstack", url)


def test_a_malformed_environment_endpoint_is_refused_when_used(no_endpoint, monkeypatch):
    monkeypatch.setenv("BATON_ENDPOINT_URL", "localhost:4566")

    with pytest.raises(BatonError, match="invalid endpoint URL 'localhost:4566'"):
        targets.endpoint("localstack")


def test_the_endpoint_flag_is_refused_for_the_local_target(no_endpoint):
    with pytest.raises(BatonError, match="localstack and aws targets"):
        targets.use_endpoint_url("local", "http://127.0.0.1:4566")


def test_localstack_reachable_at_the_chosen_endpoint_is_checked_there(no_endpoint, monkeypatch):
    probed: list[str] = []

    def probe(url: str, timeout: float = 1.0) -> dict[str, str]:
        probed.append(url)
        return {}

    monkeypatch.setattr(targets, "probe_url", probe)
    targets.use_endpoint_url("localstack", "http://10.0.0.5:4566")

    targets.require_reachable("localstack")

    assert probed == ["http://10.0.0.5:4566/_localstack/health"]
