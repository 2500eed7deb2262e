"""The moderator's settings fail fast, naming the environment variable."""

import pytest
from pydantic import ValidationError

from moderator.settings import Settings


@pytest.fixture(autouse=True)
def _bucket(monkeypatch):
    monkeypatch.setenv("BUCKET_NAME", "pages-bucket")
    for name in ("MODERATION_BACKEND", "REVIEW_THRESHOLD", "BLOCK_THRESHOLD", "COMPREHEND_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_use_the_offline_backend_and_documented_thresholds():
    settings = Settings()  # type: ignore[call-arg]

    assert (settings.backend, settings.review_threshold, settings.block_threshold) == (
        "profanity-svm",
        0.5,
        0.8,
    )


def test_review_threshold_above_block_threshold_is_rejected(monkeypatch):
    monkeypatch.setenv("REVIEW_THRESHOLD", "0.9")
    monkeypatch.setenv("BLOCK_THRESHOLD", "0.8")

    with pytest.raises(ValidationError, match=r"REVIEW_THRESHOLD .* must not exceed BLOCK_THRESHOLD"):
        Settings()  # type: ignore[call-arg]


def test_threshold_outside_unit_interval_is_named(monkeypatch):
    monkeypatch.setenv("BLOCK_THRESHOLD", "1.5")

    with pytest.raises(ValidationError, match="BLOCK_THRESHOLD"):
        Settings()  # type: ignore[call-arg]


def test_non_numeric_threshold_is_named(monkeypatch):
    monkeypatch.setenv("REVIEW_THRESHOLD", "high")

    with pytest.raises(ValidationError, match="REVIEW_THRESHOLD"):
        Settings()  # type: ignore[call-arg]


def test_unknown_backend_is_named(monkeypatch):
    monkeypatch.setenv("MODERATION_BACKEND", "magic")

    with pytest.raises(ValidationError, match="MODERATION_BACKEND"):
        Settings()  # type: ignore[call-arg]


def test_comprehend_backend_can_be_selected(monkeypatch):
    monkeypatch.setenv("MODERATION_BACKEND", "comprehend")

    assert Settings().backend == "comprehend"  # type: ignore[call-arg]


def test_missing_bucket_name_is_named(monkeypatch):
    monkeypatch.delenv("BUCKET_NAME")

    with pytest.raises(ValidationError, match="BUCKET_NAME"):
        Settings()  # type: ignore[call-arg]
