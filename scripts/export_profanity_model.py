"""Export alt-profanity-check's linear model to the plain-data file the moderator ships.

The published model (TF-IDF + five calibrated linear SVMs, MIT licence) needs scikit-learn, SciPy
and NumPy to load: ~270 MB installed and ~2 s to import, more than a Lambda layer can hold next to
the extraction stack. Its inference is a sparse dot product, so we ship the weights as gzipped
JSON (~0.5 MB) and score in pure Python. Run in a throwaway venv, never in the layer:

    python -m venv /tmp/export && /tmp/export/bin/pip install alt-profanity-check==1.9.1
    /tmp/export/bin/python scripts/export_profanity_model.py

It checks that the pure-Python scorer reproduces scikit-learn's probabilities before writing.
"""

from __future__ import annotations

import gzip
import json
import sys
from importlib import metadata, resources
from pathlib import Path

import joblib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "functions/moderator/moderator/data/profanity_model.json.gz"
SOURCE_VERSION = "1.9.1"
PARITY_SAMPLES = [
    "You are a worthless pathetic idiot and everyone hates you.",
    "The city council approved the new budget on Tuesday after a long debate.",
    "shut up you stupid moron",
    "I love walking my dog in the park on sunny mornings.",
    "",
]


def main() -> int:
    """Write the model file, after checking parity with scikit-learn on sample texts."""
    version = metadata.version("alt-profanity-check")
    if version != SOURCE_VERSION:
        sys.exit(f"expected alt-profanity-check=={SOURCE_VERSION}, found {version}")
    data = resources.files("profanity_check") / "data"
    vectorizer = joblib.load(data / "vectorizer.joblib")
    model = joblib.load(data / "model.joblib")
    params = vectorizer.get_params()
    assert params["ngram_range"] == (1, 1) and params["norm"] == "l2" and params["use_idf"]
    assert params["lowercase"] and not params["sublinear_tf"] and params["strip_accents"] is None
    members = model.calibrated_classifiers_
    assert all(m.method == "sigmoid" and len(m.calibrators) == 1 for m in members)
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    coefs = [m.estimator.coef_[0] for m in members]
    payload = {
        "source": f"alt-profanity-check {version} (MIT licence), exported by {Path(__file__).name}",
        "token_pattern": params["token_pattern"],
        "stop_words": sorted(vectorizer.get_stop_words()),
        "intercepts": [float(m.estimator.intercept_[0]) for m in members],
        "calibration": [[float(m.calibrators[0].a_), float(m.calibrators[0].b_)] for m in members],
        # term -> [idf, weight of member 0, ..., weight of member 4]
        "terms": {
            term: [round(float(vectorizer.idf_[i]), 6)] + [round(float(coef[i]), 6) for coef in coefs]
            for i, term in enumerate(terms)
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), mtime=0))

    sys.path.insert(0, str(ROOT / "functions/moderator"))
    from moderator.profanity_model import ProfanityModel

    ours = ProfanityModel.load(OUT)
    theirs = model.predict_proba(vectorizer.transform(PARITY_SAMPLES))[:, 1]
    for text, expected in zip(PARITY_SAMPLES, theirs, strict=True):
        got = ours.probability(text)
        print(f"{expected:.6f} {got:.6f} {text[:50]!r}")
        if abs(got - expected) > 1e-4:
            OUT.unlink()
            sys.exit("parity check failed: file removed")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(terms)} terms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
