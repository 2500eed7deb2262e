"""S3 key and DynamoDB key conventions shared by the steps and the CLI, written once."""

from __future__ import annotations

import hashlib


def url_id(url: str) -> str:
    """Short stable id of a URL: the first 16 hex digits of its sha256 (collisions: ~2**-64)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def raw_key(run_id: str, url: str) -> str:
    """S3 key of a page's raw body as fetched in one run."""
    return f"raw/{run_id}/{url_id(url)}.html"


def page_text_key(url: str, content_hash: str) -> str:
    """Permanent, content-addressed S3 key of a page's clean text."""
    return f"pages/{url_id(url)}/{content_hash}.txt"


def run_request_key(run_id: str) -> str:
    """S3 key of a run request too large to travel in an invocation's payload."""
    return f"runs/{run_id}/request.json"


def execution_items_key(run_id: str, execution: str) -> str:
    """S3 key of the items a Step Functions execution of a run maps over (its first, or a
    redrive's): what the state machine's Distributed Map reads."""
    return f"runs/{run_id}/items/{execution}.json"
