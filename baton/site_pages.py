"""Texts of the sample site's pages: clean ones in three languages, toxic ones, updates, and
the bodies of its hostile pages (an image, a compression bomb, a link farm).

The toxic pages are deliberately abusive (insults, no slurs) so that a real toxicity classifier
flags them; the clean ones are ordinary prose that it should let through.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PageText:
    """One content page: its title, language and paragraphs."""

    title: str
    language: str
    paragraphs: tuple[str, ...]


CLEAN: dict[str, PageText] = {
    "garden": PageText(
        "Notes from a small city garden",
        "en",
        (
            "The tomatoes finally ripened in the last week of August, three weeks later than "
            "last year. The cool spring slowed everything down, but the plants that survived "
            "the May frost produced more fruit than any season since we started keeping notes.",
            "We moved the herb bed closer to the kitchen door. Basil likes the afternoon sun "
            "there, and the thyme, which sulked for two years in the shade of the fence, has "
            "spread across the stones and now flowers for most of the summer.",
            "Next spring we plan to try runner beans along the south wall and to build a second "
            "compost bin, because one bin is never enough once the leaves start to fall.",
        ),
    ),
    "library": PageText(
        "Opening hours of the public library",
        "en",
        (
            "The central library is open from nine in the morning until seven in the evening "
            "on weekdays, and from ten until four on Saturdays. It is closed on Sundays and "
            "public holidays.",
            "Members may borrow up to twelve books, four films and two board games at a time. "
            "Loans last three weeks and can be renewed twice online or at the front desk, "
            "unless another member has reserved the item.",
            "The reading room on the second floor offers quiet desks, free wireless access and "
            "a collection of local newspapers going back to the nineteenth century.",
        ),
    ),
    "recette": PageText(
        "La tarte aux pommes de ma grand-mère",
        "fr",
        (
            "Ma grand-mère préparait cette tarte chaque dimanche d'automne, avec les pommes du "
            "verger derrière la maison. La pâte brisée se fait à la main, avec du beurre bien "
            "froid, une pincée de sel et un peu d'eau glacée.",
            "Épluchez six pommes, coupez-les en fines lamelles et disposez-les en rosace sur la "
            "pâte. Saupoudrez de sucre vanillé et ajoutez quelques noisettes de beurre avant de "
            "glisser la tarte au four pendant quarante minutes.",
            "Servez-la tiède, avec une boule de glace à la vanille ou un peu de crème fraîche. "
            "Elle se garde très bien jusqu'au lendemain, si elle n'a pas disparu avant.",
        ),
    ),
    "wanderung": PageText(
        "Eine Wanderung durch den Schwarzwald",
        "de",
        (
            "Wir sind früh am Morgen in Titisee losgegangen, als der Nebel noch über dem Wasser "
            "lag. Der Weg führt zuerst durch dichten Tannenwald und steigt dann langsam bis zu "
            "einer Hochebene an, von der man bei klarem Wetter bis zu den Alpen sieht.",
            "Zur Mittagszeit haben wir in einer kleinen Hütte Rast gemacht. Es gab Gemüsesuppe, "
            "frisches Bauernbrot und zum Nachtisch natürlich ein Stück Schwarzwälder Kirschtorte.",
            "Am Nachmittag ging es über den Feldberg zurück ins Tal. Nach siebzehn Kilometern "
            "und fast sechs Stunden waren wir müde, aber sehr zufrieden.",
        ),
    ),
    "news": PageText(
        "Neighbourhood news",
        "en",
        (
            "The council has approved the new cycle lane along the river. Work begins in the "
            "spring and should take about four months, during which the towpath stays open.",
            "The Saturday market moves to the old station square for the summer, with more "
            "space for the food stalls and a small stage for local musicians.",
        ),
    ),
}

TOXIC: dict[str, PageText] = {
    "rant": PageText(
        "Read this, idiots",
        "en",
        (
            "You are all pathetic, worthless idiots. Every single one of you who reads this "
            "garbage is a brain-dead moron, and I hate every one of you.",
            "Shut up, you stupid losers. Nobody wants to hear your disgusting, idiotic "
            "opinions. You are ugly, useless and too dumb to tie your own shoes.",
            "Go away and never come back, you miserable pack of clowns. You make me sick.",
        ),
    ),
    "flame": PageText(
        "Reply to the moderator",
        "en",
        (
            "Listen, you arrogant idiot: you are the dumbest, most useless moderator this "
            "forum has ever had. Your brain is smaller than a peanut.",
            "You pathetic little loser, you are a stupid, lying, worthless piece of trash and "
            "everybody here despises you. Shut your stupid mouth, moron.",
            "I hope you choke on your own stupidity, you disgusting fool.",
        ),
    ),
}

# Replaces a page's text when the control API turns it toxic.
TURNED_TOXIC = PageText(
    "This page has been taken over",
    "en",
    (
        "Whoever wrote this page before is a stupid, worthless idiot and a disgusting liar.",
        "Shut up, you pathetic morons. You are all brainless losers and I hate you.",
    ),
)

# Appended, one more per change, when the control API changes a page.
UPDATES: tuple[str, ...] = (
    "Update: the opening of the new community centre has been moved to the first of June.",
    "Update: volunteers are needed to repaint the benches in the park next weekend.",
    "Update: the bakery on Station Road now opens at seven, an hour earlier than before.",
    "Update: the summer concert series will include a brass band from the neighbouring town.",
)

LATIN1_BODY = (
    "<html><head><title>Caf\u00e9 cr\u00e8me \u00e0 la fran\u00e7aise</title></head><body>"
    "<h1>Caf\u00e9 cr\u00e8me \u00e0 la fran\u00e7aise</h1>"
    "<p>Ce caf\u00e9 pr\u00e8s de la gare sert un cr\u00e8me l\u00e9ger et des "
    "cr\u00eapes fa\u00e7on grand-m\u00e8re. M\u00fcller, le g\u00e9rant, dit que "
    "la Gr\u00f6\u00dfe des tasses n'a pas chang\u00e9 depuis 1987.</p>"
    "</body></html>"
).encode("latin-1")

# A minimal, valid one-page PDF: what a "not HTML" document looks like on the wire.
PDF_BODY = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


# -- hostile pages: bodies the scraper must refuse or survive -------------------------------------


def png_image(width: int = 64, height: int = 64) -> bytes:
    """A valid PNG (a grey gradient): what a binary body mislabelled as HTML looks like."""
    rows = b"".join(b"\x00" + bytes((x + y) % 256 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


BOMB_MEMBER_MIB = 16


@functools.cache
def _zeros_member() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(bytes(BOMB_MEMBER_MIB * 1024 * 1024)) + compressor.flush()


def gzip_bomb(mib: int) -> bytes:
    """At least ``mib`` MiB of zeros as gzip about a thousand times smaller.

    Made of identical 16 MiB gzip members (RFC 1952 allows several in a row), so that a large
    bomb costs one small compression, not seconds of it while the client waits.
    """
    return _zeros_member() * max(1, -(-mib // BOMB_MEMBER_MIB))


def link_farm(links: int, title_chars: int) -> tuple[str, str]:
    """The title and body HTML of a page with ``links`` links and a ``title_chars``-long title."""
    words = ("links", "everywhere", "and", "a", "title", "that", "never", "ends")
    title = " ".join(words[number % len(words)] for number in range(title_chars))[:title_chars]
    body = "\n".join(
        f'    <p><a href="/farm/{number}">Link number {number}</a></p>' for number in range(links)
    )
    return title, body


# ---- politeness and sessions ------------------------------------------------------------------

# The site's robots.txt: every user agent is kept out of /private/.
ROBOTS_TXT = b"""# baton sample site
User-agent: *
Disallow: /private/
Allow: /

Sitemap: /sitemap.xml
"""
PRIVATE_PAGE = PageText(
    title="Staff notes",
    language="en",
    paragraphs=("This page is listed as disallowed in robots.txt: polite crawlers skip it.",),
)
# What /members/report requires: a header whose value the e2e tests keep in SSM Parameter Store
# and a cookie whose value they keep in Secrets Manager (never in the watchlist).
MEMBER_HEADER = "X-Site-Token"
MEMBER_TOKEN = "sample-site-token-4f7c"
MEMBER_COOKIE = "member"
MEMBER_COOKIE_VALUE = "sample-member-9d2e"
MEMBERS_PAGE = PageText(
    title="Members' report",
    language="en",
    paragraphs=("Only signed-in members see this report: the quarterly garden survey results.",),
)
