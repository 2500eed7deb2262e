"""The offline default backend on real text, and the Comprehend backend against a stub."""

import gzip
import json
import math
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from moderator.backends import ComprehendBackend, ProfanitySvmBackend
from moderator.chunking import chunk_text
from moderator.logic import moderate
from moderator.profanity_model import ProfanityModel
from pipeline import aws
from pipeline.errors import PermanentError, TransientError
from pipeline.models import TransformedPage, Verdict

ABUSIVE = [
    "You are a pathetic, worthless idiot and nobody wants to hear your stupid opinions.",
    "Shut up, you brainless moron. Everything you write is garbage.",
    "What a disgusting loser you are, you ignorant fool.",
]
ORDINARY = [
    "The regional council voted on Tuesday to approve a transport plan that adds bus lanes.",
    "Scientists have discovered a new species of frog in the rainforests of Ecuador.",
    "The recipe calls for two cups of flour, one egg, a pinch of salt and some milk.",
    "Police said the suspect was arrested after a robbery at a bank downtown on Friday.",
    "The orchestra's new season opens with Beethoven's ninth symphony in September.",
]
NEWS_PARAGRAPH = (
    "The regional council met on Tuesday to discuss the new transport plan, which includes bus"
    " lanes and cycle paths across the city centre. Officials expect construction to begin next"
    " spring, and residents will be consulted on the final routes during the winter months."
)


class Texts(dict):
    """A text source backed by a dict, standing in for S3."""

    def read_text(self, key: str) -> str:
        return self[key]


def page(text_key: str = "text/page.txt") -> TransformedPage:
    return TransformedPage.model_validate(
        {
            "run_id": "run-1",
            "url": "https://news.example/a",
            "final_url": "https://news.example/a",
            "text_key": text_key,
            "content_hash": "0" * 64,
            "fetched_at": datetime(2026, 11, 1, tzinfo=UTC),
        }
    )


@pytest.fixture(scope="module")
def offline():
    return ProfanitySvmBackend()


@pytest.mark.parametrize("text", ABUSIVE)
def test_offline_backend_scores_abusive_insults_high(offline, text):
    [score] = offline.score([text])

    assert score.toxicity > 0.9


@pytest.mark.parametrize("text", ORDINARY)
def test_offline_backend_scores_ordinary_prose_low(offline, text):
    [score] = offline.score([text])

    assert score.toxicity < 0.3


def test_one_abusive_paragraph_in_a_long_article_is_not_diluted(offline):
    text = "\n".join([NEWS_PARAGRAPH] * 30 + [ABUSIVE[0]] + [NEWS_PARAGRAPH] * 30)

    result = moderate(page(), Texts({"text/page.txt": text}), offline, 0.5, 0.8)

    assert result.verdict is Verdict.BLOCK


def test_long_ordinary_article_is_allowed(offline):
    text = "\n".join([NEWS_PARAGRAPH, *ORDINARY] * 10)

    result = moderate(page(), Texts({"text/page.txt": text}), offline, 0.5, 0.8)

    assert result.verdict is Verdict.ALLOW


def test_empty_page_is_allowed_with_score_zero(offline):
    result = moderate(page(), Texts({"text/page.txt": ""}), offline, 0.5, 0.8)

    assert (result.score, result.verdict, result.labels) == (0.0, Verdict.ALLOW, {})


def test_result_names_the_backend(offline):
    result = moderate(page(), Texts({"text/page.txt": NEWS_PARAGRAPH}), offline, 0.5, 0.8)

    assert result.backend == "profanity-svm"


def comprehend_result(toxicity: float) -> dict:
    return {"Toxicity": toxicity, "Labels": [{"Name": "INSULT", "Score": toxicity}]}


@pytest.fixture
def stubbed():
    client = aws.client("comprehend", region="us-east-1")
    with Stubber(client) as stubber:
        yield ComprehendBackend(client=client), stubber
    stubber.assert_no_pending_responses()


def test_comprehend_sends_at_most_ten_segments_per_call(stubbed):
    backend, stubber = stubbed
    chunks = [f"segment {i}" for i in range(12)]
    stubber.add_response(
        "detect_toxic_content",
        {"ResultList": [comprehend_result(0.1)] * 10},
        {"TextSegments": [{"Text": c} for c in chunks[:10]], "LanguageCode": "en"},
    )
    stubber.add_response(
        "detect_toxic_content",
        {"ResultList": [comprehend_result(0.9)] * 2},
        {"TextSegments": [{"Text": c} for c in chunks[10:]], "LanguageCode": "en"},
    )

    scores = backend.score(chunks)

    assert [s.toxicity for s in scores] == [0.1] * 10 + [0.9] * 2


def test_comprehend_labels_are_kept_per_chunk(stubbed):
    backend, stubber = stubbed
    stubber.add_response(
        "detect_toxic_content",
        {
            "ResultList": [
                {
                    "Toxicity": 0.7,
                    "Labels": [{"Name": "INSULT", "Score": 0.8}, {"Name": "PROFANITY", "Score": 0.3}],
                }
            ]
        },
    )

    [score] = backend.score(["some text"])

    assert dict(score.labels) == {"INSULT": 0.8, "PROFANITY": 0.3}


def test_comprehend_receives_segments_of_at_most_one_kilobyte(stubbed):
    backend, stubber = stubbed
    text = "\n".join([NEWS_PARAGRAPH] * 20)
    segments = chunk_text(text, max_bytes=1000)
    stubber.add_response(
        "detect_toxic_content",
        {"ResultList": [comprehend_result(0.05)] * len(segments)},
        {"TextSegments": [{"Text": s} for s in segments], "LanguageCode": "en"},
    )

    result = moderate(page(), Texts({"text/page.txt": text}), backend, 0.5, 0.8)

    assert max(len(s.encode()) for s in segments) <= 1000
    assert (result.backend, result.verdict) == ("comprehend", Verdict.ALLOW)


def test_comprehend_throttling_is_transient(stubbed):
    backend, stubber = stubbed
    stubber.add_client_error("detect_toxic_content", "ThrottlingException", http_status_code=400)

    with pytest.raises(TransientError):
        backend.score(["text"])


def test_comprehend_oversized_text_is_permanent(stubbed):
    backend, stubber = stubbed
    stubber.add_client_error("detect_toxic_content", "TextSizeLimitExceededException", http_status_code=400)

    with pytest.raises(PermanentError):
        backend.score(["text"])


def test_a_model_file_with_a_short_term_row_is_refused_by_name(tmp_path):
    # Each term must carry its idf and one weight per member: a row that does not would shift
    # every later term's weights in the flat table and score silently wrong.
    model = tmp_path / "model.json.gz"
    model.write_bytes(gzip.compress(json.dumps({
        "token_pattern": r"(?u)\b\w\w+\b", "stop_words": [], "source": "test",
        "intercepts": [0.1, 0.2], "calibration": [[1.0, 0.0], [1.0, 0.0]],
        "terms": {"idiot": [1.5, 0.3, 0.4], "moron": [1.2, 0.5]},
    }).encode()))
    with pytest.raises(ValueError, match=r"model\.json\.gz: a term has 2 values, expected 1 \+ 2"):
        ProfanityModel.load(model)


def test_a_model_scores_from_its_terms_rows(tmp_path):
    model = tmp_path / "model.json.gz"
    model.write_bytes(gzip.compress(json.dumps({
        "token_pattern": r"(?u)\b\w\w+\b", "stop_words": ["the"], "source": "test",
        "intercepts": [0.0], "calibration": [[-1.0, 0.0]],
        "terms": {"calm": [1.0, -2.0], "idiot": [2.0, 3.0]},
    }).encode()))
    loaded = ProfanityModel.load(model)
    # One member: decision = weight of the only term (its tf-idf normalised to 1);
    # probability = sigmoid(-(a * decision + b)) with a = -1, b = 0.
    assert loaded.probability("the idiot") == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert loaded.probability("calm") == pytest.approx(1 / (1 + math.exp(2.0)))
    assert loaded.probability("the unknown words") == pytest.approx(0.5)
