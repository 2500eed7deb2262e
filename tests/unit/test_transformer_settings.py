"""The transformer's settings fail fast, naming the environment variable."""

import pytest
from pydantic import ValidationError

from transformer.settings import Settings


def test_missing_bucket_name_is_named(monkeypatch):
    monkeypatch.delenv("BUCKET_NAME", raising=False)

    with pytest.raises(ValidationError, match="BUCKET_NAME"):
        Settings()  # type: ignore[call-arg]


def test_bucket_name_is_read_from_environment(monkeypatch):
    monkeypatch.setenv("BUCKET_NAME", "pages-bucket")

    assert Settings().bucket_name == "pages-bucket"  # type: ignore[call-arg]
