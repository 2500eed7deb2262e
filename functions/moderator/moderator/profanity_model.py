"""A pure-Python scorer for alt-profanity-check's published linear model (see data/NOTICE).

The model is TF-IDF features into five sigmoid-calibrated linear SVMs whose probabilities are
averaged, exactly as scikit-learn's ``CalibratedClassifierCV.predict_proba`` does. Scoring is a
sparse dot product, so the weights ship as gzipped JSON and no NumPy/SciPy/scikit-learn is needed.
Loaded, each term's idf and weights sit side by side in one flat array of doubles rather than as
float objects in per-term tuples: 2.6 MB instead of 6.4 MB in every warm moderator.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MODEL_FILE = Path(__file__).parent / "data" / "profanity_model.json.gz"


@dataclass(frozen=True)
class ProfanityModel:
    """Weights of the exported model and the scoring that scikit-learn would do with them."""

    token_pattern: re.Pattern[str]
    stop_words: frozenset[str]
    rows: dict[str, int]  # term -> its row in ``table``
    table: array[float]  # row r: idf at r * width, then one weight per member
    intercepts: tuple[float, ...]
    calibration: tuple[tuple[float, float], ...]
    source: str

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> ProfanityModel:
        """Read an exported model file."""
        payload = json.loads(gzip.decompress(path.read_bytes()))
        terms: dict[str, list[float]] = payload["terms"]
        intercepts = tuple(payload["intercepts"])
        table = array("d")
        for values in terms.values():
            if len(values) != 1 + len(intercepts):
                raise ValueError(f"{path}: a term has {len(values)} values, expected "
                                 f"1 + {len(intercepts)} (idf, then one weight per member)")
            table.extend(values)
        return cls(
            token_pattern=re.compile(payload["token_pattern"]),
            stop_words=frozenset(payload["stop_words"]),
            rows={term: row for row, term in enumerate(terms)},
            table=table,
            intercepts=intercepts,
            calibration=tuple((a, b) for a, b in payload["calibration"]),
            source=payload["source"],
        )

    def probability(self, text: str) -> float:
        """Probability in [0, 1] that the text is offensive."""
        counts = Counter(
            token
            for token in self.token_pattern.findall(text.lower())
            if token not in self.stop_words and token in self.rows
        )
        width = 1 + len(self.intercepts)
        tfidf: list[tuple[int, float]] = []  # (first column of the term's row, its tf-idf value)
        for term, count in counts.items():
            start = self.rows[term] * width
            tfidf.append((start, count * self.table[start]))
        norm = math.sqrt(sum(value * value for _, value in tfidf)) or 1.0
        total = 0.0
        for member, (intercept, (a, b)) in enumerate(zip(self.intercepts, self.calibration, strict=True)):
            decision = (
                intercept + sum(value * self.table[start + 1 + member] for start, value in tfidf) / norm
            )
            total += _sigmoid(-(a * decision + b))
        return total / len(self.intercepts)


def _sigmoid(x: float) -> float:
    # Split by sign so math.exp never overflows on extreme decisions.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
