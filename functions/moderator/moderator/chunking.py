"""Split a page's text into chunks a classifier scores one by one.

A page is scored chunk by chunk, never whole: a single abusive paragraph in a long article
would otherwise be diluted to nothing by the surrounding prose.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … followed by whitespace; good enough for chunking, not for NLP.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def chunk_text(text: str, max_bytes: int) -> list[str]:
    """Chunks of at most max_bytes UTF-8 bytes, packed from paragraphs, sentences, then words."""
    if max_bytes < 4:
        raise ValueError("max_bytes must hold at least one UTF-8 character")
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_bytes):
        candidate = f"{current} {piece}" if current else piece
        if _size(candidate) <= max_bytes:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _pieces(text: str, max_bytes: int) -> list[str]:
    # The transformer writes one paragraph per line.
    pieces: list[str] = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if _size(paragraph) <= max_bytes:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            if _size(sentence) <= max_bytes:
                pieces.append(sentence)
                continue
            for word in sentence.split(" "):
                pieces.extend(_hard_split(word, max_bytes))
    return pieces


def _hard_split(word: str, max_bytes: int) -> list[str]:
    # Only for pathological "words" (base64 blobs, URLs): cut on character boundaries.
    parts: list[str] = []
    current = ""
    for char in word:
        if _size(current + char) > max_bytes:
            parts.append(current)
            current = ""
        current += char
    if current:
        parts.append(current)
    return parts


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
