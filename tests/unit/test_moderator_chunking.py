"""Splitting text into chunks small enough to score without diluting a toxic passage."""

from moderator.chunking import chunk_text


def test_short_paragraphs_are_packed_into_one_chunk():
    assert chunk_text("First line.\nSecond line.", max_bytes=100) == ["First line. Second line."]


def test_no_chunk_exceeds_the_byte_limit():
    text = "\n".join(f"Paragraph {i} is about café culture and naïve résumés." * 3 for i in range(30))

    chunks = chunk_text(text, max_bytes=120)

    assert max(len(chunk.encode("utf-8")) for chunk in chunks) <= 120


def test_chunking_keeps_every_word_in_order():
    text = "Alpha beta gamma. Delta epsilon zeta!\n\nEta theta iota? Kappa lambda mu."

    chunks = chunk_text(text, max_bytes=20)

    assert " ".join(chunks).split() == text.split()


def test_long_paragraph_is_split_at_sentence_ends():
    text = "First sentence is here. Second sentence is here. Third sentence is here."

    assert chunk_text(text, max_bytes=50) == [
        "First sentence is here. Second sentence is here.",
        "Third sentence is here.",
    ]


def test_overlong_word_is_cut_on_character_boundaries():
    chunks = chunk_text("é" * 10, max_bytes=5)

    assert chunks == ["éé", "éé", "éé", "éé", "éé"]


def test_blank_text_gives_no_chunks():
    assert chunk_text(" \n\n \t ", max_bytes=100) == []
