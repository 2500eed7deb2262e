"""Thresholds to verdicts, and per-chunk scores to one page score."""

import pytest

from moderator.scoring import TOXIC_SHARE, ChunkScore, aggregate, verdict_for
from pipeline.models import Verdict


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, Verdict.ALLOW),
        (0.49, Verdict.ALLOW),
        (0.5, Verdict.REVIEW),
        (0.79, Verdict.REVIEW),
        (0.8, Verdict.BLOCK),
        (1.0, Verdict.BLOCK),
    ],
)
def test_verdict_follows_thresholds(score, expected):
    assert verdict_for(score, review_threshold=0.5, block_threshold=0.8) is expected


def test_equal_thresholds_never_give_review():
    assert verdict_for(0.7, review_threshold=0.7, block_threshold=0.7) is Verdict.BLOCK


def test_page_score_is_the_worst_chunk_not_the_mean():
    scores = [ChunkScore(0.01)] * 50 + [ChunkScore(0.97)]

    score, _ = aggregate(scores, review_threshold=0.5)

    assert score == 0.97


def test_toxic_share_counts_chunks_at_or_above_review_threshold():
    scores = [ChunkScore(0.1), ChunkScore(0.5), ChunkScore(0.9), ChunkScore(0.2)]

    _, labels = aggregate(scores, review_threshold=0.5)

    assert labels[TOXIC_SHARE] == 0.5


def test_each_label_keeps_its_worst_chunk():
    scores = [
        ChunkScore(0.6, {"INSULT": 0.6, "PROFANITY": 0.1}),
        ChunkScore(0.4, {"INSULT": 0.2, "PROFANITY": 0.4}),
    ]

    _, labels = aggregate(scores, review_threshold=0.5)

    assert (labels["INSULT"], labels["PROFANITY"]) == (0.6, 0.4)


def test_no_chunks_scores_zero_with_no_labels():
    assert aggregate([], review_threshold=0.5) == (0.0, {})


def test_scores_are_clamped_to_unit_interval():
    score, labels = aggregate([ChunkScore(1.0000001, {"INSULT": -0.0001})], review_threshold=0.5)

    assert (score, labels["INSULT"]) == (1.0, 0.0)
