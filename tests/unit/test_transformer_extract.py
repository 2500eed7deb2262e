"""Extraction logic of the transformer: decoding, main text, language, links, hash."""

import hashlib

from transformer.extract import content_hash, decode_html, detect_language, extract, normalise

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Transport plan | City News</title></head>
<body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article>
<h1>Council backs new transport plan</h1>
<p>The regional council voted on Tuesday to approve a transport plan that adds bus lanes and
protected cycle paths across the city centre. Supporters said the plan would cut journey times.</p>
<p>Construction is expected to start next spring, and the first routes should open within two
years, according to the council's <a href="/reports/transport.pdf">published report</a>.</p>
</article>
<footer>Copyright City News</footer>
</body></html>"""

FRENCH = """<html><body><article><p>Le conseil régional a approuvé mardi un plan de transport qui
ajoute des voies de bus et des pistes cyclables protégées dans tout le centre-ville. Les
partisans du projet estiment qu'il réduira les temps de trajet des habitants.</p></article>
</body></html>"""

GERMAN = """<html><body><article><p>Der Stadtrat hat am Dienstag einen Verkehrsplan beschlossen,
der neue Busspuren und geschützte Radwege in der gesamten Innenstadt vorsieht. Die Befürworter
erwarten, dass sich die Fahrzeiten der Pendler dadurch deutlich verkürzen werden.</p></article>
</body></html>"""


def test_main_text_keeps_article_and_drops_boilerplate():
    result = extract(ARTICLE, "https://news.example/2026/transport")

    assert "approve a transport plan" in result.text
    assert "Copyright City News" not in result.text


def test_title_is_extracted():
    result = extract(ARTICLE, "https://news.example/2026/transport")

    assert result.title == "Council backs new transport plan"


def test_word_count_counts_words_of_the_extracted_text():
    result = extract("<html><body><p>One two three, four-five don't.</p></body></html>", "https://e.example/")

    assert result.word_count == 5


def test_malformed_html_still_yields_text_and_links():
    html = "<html><body><div>Unclosed <b>bold<p>first para<p>second <a href='/x'>link</i></table>"

    result = extract(html, "https://e.example/dir/page")

    assert "first para" in result.text and "second" in result.text
    assert result.links == ["https://e.example/x"]


def test_empty_page_gives_empty_text_and_hash_of_empty_string():
    result = extract("", "https://e.example/")

    assert (result.text, result.word_count, result.title, result.links) == ("", 0, None, [])
    assert result.content_hash == hashlib.sha256(b"").hexdigest()


def test_page_of_only_markup_gives_empty_text():
    result = extract(
        "<html><head><script>var x = 1;</script></head><body></body></html>", "https://e.example/"
    )

    assert result.text == "" and result.word_count == 0


def test_binary_garbage_does_not_crash():
    result = extract(decode_html(bytes(range(256)) * 4), "https://e.example/")

    assert result.content_hash == content_hash(result.text)


def test_latin1_without_declaration_decodes_correctly():
    body = "<html><body><p>Le café était très animé, où l'on mangeait des crêpes.</p></body></html>"

    html = decode_html(body.encode("latin-1"))

    assert "Le café était très animé, où l'on mangeait des crêpes." in html


def test_charset_declared_by_header_wins():
    body = "<p>Привет, мир</p>".encode("koi8-r")

    assert decode_html(body, "koi8-r") == "<p>Привет, мир</p>"


def test_charset_declared_by_meta_tag_is_used():
    body = '<html><head><meta charset="iso-8859-15"></head><body>Prix : 5 €</body></html>'

    assert "Prix : 5 €" in decode_html(body.encode("iso-8859-15"))


def test_charset_declared_by_http_equiv_meta_is_used():
    body = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Москва</p>'

    assert "Москва" in decode_html(body.encode("cp1251"))


def test_wrong_utf8_declaration_falls_back_to_cp1252():
    body = "<p>Déjà vu</p>".encode("cp1252")

    assert decode_html(body, "utf-8") == "<p>Déjà vu</p>"


def test_unknown_charset_label_is_ignored():
    assert decode_html("<p>naïve</p>".encode(), "x-no-such-charset") == "<p>naïve</p>"


def test_utf8_bom_is_stripped():
    assert decode_html(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>") == "<p>café</p>"


def test_language_of_english_page_is_en():
    assert extract(ARTICLE, "https://news.example/").language == "en"


def test_language_of_french_page_is_fr():
    assert extract(FRENCH, "https://news.example/").language == "fr"


def test_language_of_german_page_is_de():
    assert extract(GERMAN, "https://news.example/").language == "de"


def test_language_of_empty_text_is_unknown():
    assert detect_language("") is None


def test_links_are_absolute_deduplicated_and_http_only():
    html = """<html><body><p>See:
      <a href="/a">a</a> <a href="/a#section">a again</a> <a href="b?x=1">b</a>
      <a href="https://other.example/c">c</a> <a href="//cdn.example/d">d</a>
      <a href="mailto:x@example.com">mail</a> <a href="javascript:void(0)">js</a>
      <a href="ftp://files.example/e">ftp</a> <a href="#top">top</a> <a href="">empty</a>
    </p></body></html>"""

    links = extract(html, "https://site.example/dir/page").links

    assert links == [
        "https://site.example/a",
        "https://site.example/dir/b?x=1",
        "https://other.example/c",
        "https://cdn.example/d",
        "https://site.example/dir/page",
    ]


def test_links_resolve_against_base_element():
    html = (
        '<html><head><base href="https://mirror.example/root/"></head><body><a href="x">x</a></body></html>'
    )

    assert extract(html, "https://site.example/page").links == ["https://mirror.example/root/x"]


def test_normalise_collapses_whitespace_and_composes_unicode():
    assert normalise("  Cafe\u0301 \n\t ouvert  ") == "Caf\u00e9 ouvert"


def test_hash_ignores_whitespace_and_markup_differences():
    paragraph = (
        "The regional council voted on Tuesday to approve a transport plan that adds bus lanes"
        " and protected cycle paths across the city centre. Supporters said the plan would cut"
        " journey times for thousands of commuters every day."
    )
    plain = f"<html><body><article><h1>Plan</h1><p>{paragraph}</p></article></body></html>"
    restyled = (
        plain.replace("approve a", "<b>approve</b>   a")
        .replace("times for", "<i>times</i>\n  for")
        .replace("<h1>", '<h1 class="headline">')
    )

    assert (
        extract(plain, "https://e.example/").content_hash
        == extract(restyled, "https://e.example/").content_hash
    )


def test_hash_is_case_sensitive():
    assert content_hash("The plan") != content_hash("the plan")


def test_hash_is_sha256_of_normalised_text():
    assert content_hash(" a \n b ") == hashlib.sha256(b"a b").hexdigest()
