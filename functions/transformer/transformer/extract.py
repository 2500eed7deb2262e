"""Pure extraction logic: raw HTML bytes to main text, title, language, links and content hash.

No I/O here. Main text comes from trafilatura (boilerplate removal); language from CLD2; links
and fallbacks from lxml, which repairs malformed markup the way browsers do.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import pycld2
import trafilatura
from lxml import etree
from trafilatura.metadata import examine_meta, extract_title
from trafilatura.settings import Document

# WHATWG prescan looks for <meta charset> in the first 1024 bytes; we do the same.
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# Browsers decode these labels as windows-1252, whose extra printable characters (curly quotes,
# euro sign) pages labelled "latin-1" routinely contain.
_CP1252_ALIASES = {"latin_1", "iso8859_1", "ascii", "cp1252"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WORD = re.compile(r"\w+(?:[-'\u2019]\w+)*")  # "don't", "well-known" are one word
# CLD2 rejects C0/C1 control characters as invalid UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PARSER = lxml.html.HTMLParser(remove_comments=True, recover=True)
_BLOCKS = (
    "p", "div", "br", "li", "ul", "ol", "table", "tr", "td", "th", "section", "article",
    "header", "footer", "main", "aside", "nav", "blockquote", "pre", "h1", "h2", "h3", "h4",
    "h5", "h6", "dd", "dt", "dl", "figure", "figcaption", "form", "hr",
)  # fmt: skip


@dataclass(frozen=True)
class Extracted:
    """What the transformer learns from one page."""

    text: str
    title: str | None
    language: str | None
    word_count: int
    content_hash: str
    links: list[str] = field(default_factory=list)


def decode_html(body: bytes, declared_charset: str | None = None) -> str:
    """Decode an HTML body: BOM, then declared charset, then <meta charset>, then UTF-8/cp1252."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    meta = _META_CHARSET.search(body[:1024])
    candidates = [declared_charset, meta.group(1).decode("ascii") if meta else None, "utf-8"]
    for label in candidates:
        codec = _codec(label)
        if codec is None:
            continue
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue  # a wrong declaration is common; try the next candidate
    # Undeclared and not UTF-8: windows-1252 is what browsers assume for Western pages.
    return body.decode("cp1252", errors="replace")


def normalise(text: str) -> str:
    """NFC-normalise and collapse every run of whitespace to one space (case is kept)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    """sha256 hex digest of the normalised text: markup and whitespace changes do not count."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def extract(html: str, base_url: str) -> Extracted:
    """Extract main text, title, language, word count, links and hash from decoded HTML."""
    html = _sanitise(html)
    tree = _parse(html)
    document = None
    if tree is not None:
        # with_metadata would also run htmldate's date search: 3-4x the extraction time
        # (80 ms on a 40 KB page) for a date we do not use. The title is taken separately.
        found = trafilatura.bare_extraction(
            html, url=base_url, with_metadata=False, include_comments=False, include_tables=True
        )
        document = found if isinstance(found, Document) else None
    links = _links(tree, base_url) if tree is not None else []
    title = normalise(_title(tree) or "")
    declared_language = _declared_language(tree)
    text = _clean_text(document.text if document else None)
    if not text and tree is not None:
        # Too little for trafilatura to call it an article: keep what is visible (mutates tree).
        text = _clean_text(_visible_text(tree))
    flat = normalise(text)
    return Extracted(
        text=text,
        title=title or None,
        language=detect_language(flat) or declared_language,
        word_count=len(_WORD.findall(flat)),
        content_hash=content_hash(flat),
        links=links,
    )


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's main language, or None when CLD2 is not confident."""
    if not text.strip():
        return None
    try:
        reliable, _, details = pycld2.detect(_CONTROL.sub(" ", text))
    except pycld2.error:
        return None
    code = details[0][1]
    return code if reliable and code != "un" else None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name.replace("-", "_") in _CP1252_ALIASES else name


def _sanitise(html: str) -> str:
    # lxml refuses str input carrying an encoding declaration, and NULs.
    return _XML_DECLARATION.sub("", html, count=1).replace("\x00", "")


def _parse(html: str) -> lxml.html.HtmlElement | None:
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None


def _links(tree: lxml.html.HtmlElement, page_url: str) -> list[str]:
    base_href = tree.xpath("string(//base/@href)").strip()
    base = urljoin(page_url, base_href) if base_href else page_url
    seen: dict[str, None] = {}  # ordered set: first occurrence wins
    for href in tree.xpath("//a/@href | //area/@href"):
        href = href.strip()
        if not href:
            continue
        try:
            url, _ = urldefrag(urljoin(base, href))  # fragments point into the same document
            parts = urlsplit(url)
        except ValueError:
            continue  # e.g. an invalid IPv6 literal: not a link we can follow
        if parts.scheme in ("http", "https") and parts.netloc:
            seen.setdefault(url, None)
    return list(seen)


def _visible_text(tree: lxml.html.HtmlElement) -> str:
    for element in tree.xpath("//script | //style | //noscript | //template | //head"):
        element.drop_tree()
    for element in tree.iter(*_BLOCKS):
        # Block boundaries become line breaks; inline markup (<b>, <a>) stays within the line.
        element.tail = "\n" + (element.tail or "")
        element.text = "\n" + (element.text or "")
    return "".join(tree.itertext())


def _clean_text(text: str | None) -> str:
    # Keep paragraph breaks (the moderator chunks on them) but drop blank and padded lines.
    if not text:
        return ""
    lines = (" ".join(line.split()) for line in unicodedata.normalize("NFC", text).splitlines())
    return "\n".join(line for line in lines if line)


def _title(tree: lxml.html.HtmlElement | None) -> str | None:
    # trafilatura's own title logic (og:title and similar, then <h1>/<title> with the site name
    # stripped), without the rest of its metadata pass. Not public API: trafilatura is pinned.
    if tree is None:
        return None
    return examine_meta(tree).title or extract_title(tree) or tree.findtext(".//title") or None


def _declared_language(tree: lxml.html.HtmlElement | None) -> str | None:
    if tree is None:
        return None
    # <html lang="fr-CA"> -> "fr": only a fallback, pages often keep a template's default.
    primary = tree.get("lang", "").strip().lower().split("-")[0]
    return primary or None
