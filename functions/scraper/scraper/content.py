"""What a fetched body really is: its decoding (gzip, deflate) bounded as it streams, and a sniff.

The scraper asks for ``Accept-Encoding: gzip, deflate``. A compressed body is inflated piece by
piece with ``max_length``, so a body that inflates past the size cap (a compression bomb) stops
at the cap plus one byte and is refused, never held whole in memory. An encoding that was not
offered (br, zstd, stacked encodings) is refused rather than stored as if it were the page.

A server's Content-Type is a claim, not a fact: ``sniff`` looks at the first bytes of the decoded
body, so a PNG (or a gzip file, or any binary blob) labelled ``text/html`` is refused by name.
"""

from __future__ import annotations

import zlib

from pipeline.errors import PermanentError, TransientError

OFFERED_ENCODINGS = "gzip, deflate"
# WHATWG MIME Sniffing reads a "resource header" of up to 1445 bytes; so do we.
SNIFF_BYTES = 1445

_GZIP = {"gzip", "x-gzip"}
_IDENTITY = {"identity", ""}

# Leading bytes of formats a server might mislabel as HTML, and what to call them in an error.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\x7fELF", "ELF executable"),
    (b"\x00asm", "WebAssembly module"),
    (b"OggS", "Ogg media"),
    (b"fLaC", "FLAC audio"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM video"),
    (b"wOFF", "WOFF font"),
    (b"wOF2", "WOFF2 font"),
)
# WHATWG's "binary data bytes": control characters no text format uses.
_BINARY_BYTES = frozenset({*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)})
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def sniff(head: bytes, charset: str | None = None) -> str | None:
    """What ``head`` (a body's first bytes) is when it is not text, e.g. "PNG image"; else None."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP image"
    if head[4:8] == b"ftyp":
        return "MP4 media"
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return "bzip2 data"
    if head.startswith(_UTF16_BOMS) or (charset or "").startswith("utf-16"):
        return None  # UTF-16 text is full of NUL bytes
    sample = head[:SNIFF_BYTES]
    binary = sum(byte in _BINARY_BYTES for byte in sample)
    # A NUL never appears in 8-bit text; one stray control character in a real page is tolerated.
    if b"\x00" in sample or binary * 100 > len(sample):
        return "binary data"
    return None


class BodyDecoder:
    """Undoes a Content-Encoding piece by piece, never producing more than ``limit`` bytes."""

    def __init__(self, content_encoding: str | None, limit: int, url: str) -> None:
        self.encoding = _encoding(content_encoding, url)
        self.limit = limit
        self.url = url
        self.size = 0  # decoded bytes so far
        self._inflater: zlib._Decompress | None = None
        self._pending = b""  # deflate: the first bytes, until we know zlib-wrapped or raw
        if self.encoding == "gzip":
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of the next piece of body; PermanentError past the limit."""
        if self.encoding == "identity":
            return self._count(data)
        if self._inflater is None:  # deflate, header not seen yet
            self._pending += data
            if len(self._pending) < 2:
                return b""
            data, self._pending = self._pending, b""
            # RFC 9110 deflate is zlib-wrapped, but many servers send raw deflate: tell by header.
            zlib_wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        return self._inflate(data)

    def finish(self) -> None:
        """Check the compressed stream ended; TransientError when it was cut short."""
        if self.encoding == "identity":
            return
        if self._inflater is None or not self._inflater.eof:
            raise TransientError(f"truncated body: the {self.encoding} stream of {self.url} ends early")

    def _inflate(self, data: bytes) -> bytes:
        assert self._inflater is not None
        pieces: list[bytes] = []
        while data and not self._inflater.eof:
            try:
                piece = self._inflater.decompress(data, self.limit + 1 - self.size)
            except zlib.error as error:
                raise PermanentError(f"corrupt {self.encoding} body from {self.url}: {error}") from error
            pieces.append(self._count(piece))
            data = self._inflater.unconsumed_tail
            if self._inflater.eof and self.encoding == "gzip" and self._inflater.unused_data:
                # A gzip body may be several members in a row (RFC 1952 2.2).
                data = self._inflater.unused_data
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return b"".join(pieces)

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.limit:
            if self.encoding == "identity":
                raise PermanentError(f"too large: {self.url} is over the limit of {self.limit} bytes")
            raise PermanentError(
                f"too large: the {self.encoding} body of {self.url} decompresses to over "
                f"{self.limit} bytes (a compression bomb?)"
            )
        return piece


def _encoding(value: str | None, url: str) -> str:
    codings = [part.strip().lower() for part in (value or "").split(",")]
    codings = [coding for coding in codings if coding not in _IDENTITY]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in _GZIP:
        return "gzip"
    if codings == ["deflate"]:
        return "deflate"
    raise PermanentError(
        f"content encoding {value!r} of {url} was not offered (accepted: {OFFERED_ENCODINGS})"
    )
