"""The moderator's use case: read the page's text, score it chunk by chunk, decide."""

from __future__ import annotations

from typing import Protocol

from moderator.backends import ToxicityBackend
from moderator.chunking import chunk_text
from moderator.scoring import aggregate, verdict_for
from pipeline.models import ModerationResult, TransformedPage


class TextSource(Protocol):
    """Where extracted texts are read from (S3 in Lambda, a dict in unit tests)."""

    def read_text(self, key: str) -> str:
        """The text stored under key."""
        ...


def moderate(
    page: TransformedPage,
    texts: TextSource,
    backend: ToxicityBackend,
    review_threshold: float,
    block_threshold: float,
) -> ModerationResult:
    """Score one transformed page; an empty page scores 0 and is allowed."""
    chunks = chunk_text(texts.read_text(page.text_key), backend.max_chunk_bytes)
    scores = backend.score(chunks) if chunks else []
    score, labels = aggregate(scores, review_threshold)
    return ModerationResult(
        page=page,
        score=score,
        labels=labels,
        verdict=verdict_for(score, review_threshold, block_threshold),
        backend=backend.name,
    )
