"""Pure scoring logic: per-chunk scores to one page score, labels and verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.models import Verdict

# Share of chunks scoring at or above the review threshold, reported beside the model's labels.
TOXIC_SHARE = "TOXIC_SHARE"


@dataclass(frozen=True)
class ChunkScore:
    """A backend's assessment of one chunk: overall toxicity and per-label scores, all in [0, 1]."""

    toxicity: float
    labels: Mapping[str, float] = field(default_factory=dict)


def aggregate(scores: Sequence[ChunkScore], review_threshold: float) -> tuple[float, dict[str, float]]:
    """Page score (the worst chunk's) and labels (each label's worst, plus the toxic share)."""
    if not scores:
        return 0.0, {}
    # The maximum, not the mean: one abusive paragraph is enough, however long the page.
    score = _clamp(max(chunk.toxicity for chunk in scores))
    labels: dict[str, float] = {}
    for chunk in scores:
        for name, value in chunk.labels.items():
            labels[name] = max(labels.get(name, 0.0), _clamp(value))
    toxic = sum(1 for chunk in scores if chunk.toxicity >= review_threshold)
    labels[TOXIC_SHARE] = toxic / len(scores)
    return score, labels


def verdict_for(score: float, review_threshold: float, block_threshold: float) -> Verdict:
    """BLOCK at or above the block threshold, REVIEW at or above the review one, else ALLOW."""
    if score >= block_threshold:
        return Verdict.BLOCK
    if score >= review_threshold:
        return Verdict.REVIEW
    return Verdict.ALLOW


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
