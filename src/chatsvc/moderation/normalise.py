# ruff: noqa: RUF001, RUF003 (this module maps look-alike characters on purpose)
"""Normalised views of a message, each able to map its spans back to the original text.

Two views are built per character with `str.translate` (C speed): the *surface* view (invisible
characters removed, Unicode tag characters turned back into the ASCII they hide, NFKC) for the PII
detectors, and the *folded* view (the surface, case-folded, diacritics and combining marks dropped,
look-alike Cyrillic/Greek/Armenian letters and typographic quotes and dashes mapped to ASCII) for
the injection rules. The injection rules also read derived views: leetspeak and rot13 of the folded
text, and the decoded text of base64 and hex runs, within fixed budgets."""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chatsvc.moderation import search

#: Characters that render as nothing (or only steer rendering) and so can hide text from a reader:
#: zero-width and joiner characters, bidi controls, soft hyphen, invisible operators, fillers,
#: variation selectors and the tag characters that carry no ASCII.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # arabic letter mark
    (0x115F, 0x1160),  # hangul fillers
    (0x17B4, 0x17B5),  # khmer inherent vowels
    (0x180B, 0x180F),  # mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth hangul filler
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical formatting
    (0xE0000, 0xE001F),  # language tag, tag controls
    (0xE007F, 0xE007F),  # cancel tag
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
#: Tag characters U+E0020..U+E007E mirror ASCII 0x20..0x7E and are invisible: "ASCII smuggling".
TAG_FIRST, TAG_LAST = 0xE0020, 0xE007E

#: Letters from other scripts that look like Latin ones (after case folding): enough to defeat
#: "іgnore" written with a Cyrillic і, not a full confusables table.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    # Armenian, Latin oddities
    "օ": "o", "ց": "g", "հ": "h", "ı": "i", "ȷ": "j", "ʀ": "r", "ɪ": "i", "ᴀ": "a", "ᴇ": "e",
    # typography
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
    "″": '"', "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
}  # fmt: skip

#: Ranges where every code point is its own surface and folded form (checked by a test), skipped
#: when the tables are built: CJK ideographs, Hangul syllables, private use, unassigned blocks.
IDENTITY_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xD800, 0xF8FF),  # surrogates and private use
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF),
    (0x30000, 0x3FFFF),
    (0x40000, 0xDFFFF),
    (0xE0080, 0xE00FF),
    (0xE01F0, 0xEFFFF),
    (0xF0000, 0x10FFFF),
)


_INVISIBLE = frozenset(cp for lo, hi in _INVISIBLE_RANGES for cp in range(lo, hi + 1))


def surface_char(ch: str) -> str:
    cp = ord(ch)
    if TAG_FIRST <= cp <= TAG_LAST:
        return chr(cp - 0xE0000)
    if cp in _INVISIBLE:
        return ""
    return unicodedata.normalize("NFKC", ch)


def fold_char(ch: str) -> str:
    text = unicodedata.normalize("NFD", surface_char(ch).casefold())
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me"))
    text = unicodedata.normalize("NFC", text)
    return "".join(_CONFUSABLES.get(c, c) for c in text)


@dataclass(frozen=True, slots=True)
class _Table:
    """A translate table (only the characters that change) and its irregular characters: those
    that become zero or several characters, which shift the offsets after them."""

    mapping: dict[int, str]
    irregular: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Tables:
    surface: _Table
    folded: _Table


def _changes(ch: str) -> bool:
    """Whether surface or fold may change `ch` (cheap checks that rule most characters out)."""
    return (
        unicodedata.decomposition(ch) != ""
        or ch.casefold() != ch
        or unicodedata.category(ch) in ("Mn", "Me", "Cf")
        or ch in _CONFUSABLES
        or ord(ch) in _INVISIBLE
        or TAG_FIRST <= ord(ch) <= TAG_LAST
    )


@functools.cache
def tables() -> _Tables:
    """Built once per process on first use (a fraction of a second); `warm_up()` does it ahead of
    time."""
    surface: dict[int, str] = {}
    folded: dict[int, str] = {}
    start = 0
    for lo, hi in (*IDENTITY_RANGES, (0x110000, 0x110000)):
        for cp in range(start, lo):
            ch = chr(cp)
            if not _changes(ch):
                continue
            s, f = surface_char(ch), fold_char(ch)
            if s != ch:
                surface[cp] = s
            if f != ch:
                folded[cp] = f
        start = hi + 1

    def table(mapping: dict[int, str]) -> _Table:
        odd = frozenset(chr(c) for c, v in mapping.items() if len(v) != 1)
        return _Table(mapping, odd)

    return _Tables(table(surface), table(folded))


def warm_up() -> None:
    """Build the translate tables now rather than during the first scan."""
    tables()


@functools.lru_cache(maxsize=256)
def _char_class(chars: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")


class OffsetMap:
    """Maps spans of a translated view back to the original text. Built lazily: only a message
    with findings pays for it, and an ASCII message or one without irregular characters never."""

    __slots__ = ("_irregular", "_linear", "_mapping", "_original", "_origins", "_starts")

    def __init__(self, original: str, table: _Table) -> None:
        self._original = original
        self._mapping = table.mapping
        self._irregular = table.irregular
        self._starts: list[int] | None = None
        self._origins: list[int] = []
        self._linear: list[bool] = []

    def _build(self) -> list[int]:
        starts, origins, linear = [0], [0], [True]
        if not self._original.isascii():
            present = self._irregular.intersection(self._original)
            if present:
                shift = 0  # view position minus original position after the last irregular one
                for match in _char_class(frozenset(present)).finditer(self._original):
                    at = match.start()
                    width = len(self._mapping[ord(match.group())])
                    if width:
                        starts.append(at + shift)
                        origins.append(at)
                        linear.append(False)
                    shift += width - 1
                    starts.append(at + 1 + shift)
                    origins.append(at + 1)
                    linear.append(True)
        self._origins, self._linear = origins, linear
        self._starts = starts
        return starts

    def _origin(self, position: int) -> int:
        starts = self._starts if self._starts is not None else self._build()
        j = bisect_right(starts, position) - 1
        return self._origins[j] + (position - starts[j] if self._linear[j] else 0)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span that produced view characters [start, end) (end > start)."""
        return self._origin(start), self._origin(end - 1) + 1


@dataclass(frozen=True, slots=True)
class View:
    """One text the injection rules read, and how its spans map back to the original."""

    via: str  # text, leet, rot13, base64, hex
    text: str
    #: offsets of a translated view; None for decoded text, whose every span maps to `encoded`
    offsets: OffsetMap | None = None
    encoded: tuple[int, int] = (0, 0)
    #: the text's words, which tell the rules which of their start literals can occur at all
    vocabulary: search.Vocabulary | None = None

    def origin(self, start: int, end: int) -> tuple[int, int]:
        return self.offsets.span(start, end) if self.offsets else self.encoded


@dataclass(slots=True)
class Normalised:
    original: str
    surface: str
    folded: str
    surface_map: OffsetMap
    folded_map: OffsetMap


def normalise(text: str) -> Normalised:
    t = tables()
    return Normalised(
        original=text,
        surface=text.translate(t.surface.mapping),
        folded=text.translate(t.folded.mapping),
        surface_map=OffsetMap(text, t.surface),
        folded_map=OffsetMap(text, t.folded),
    )


def fold(text: str) -> str:
    """The folded form of a decoded payload (no offsets needed: it maps to its encoded run)."""
    return text.translate(tables().folded.mapping)


_INVISIBLE_RE = re.compile(
    "["
    + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in _INVISIBLE_RANGES)
    + f"{re.escape(chr(TAG_FIRST))}-{re.escape(chr(TAG_LAST))}]"
)


def has_invisible(text: str) -> bool:
    return _INVISIBLE_RE.search(text) is not None


# Derived views of the folded text. Both keep its length, so they share its offset map.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "|": "l", "!": "i"})  # fmt: skip
_LEET_CHARS = tuple("013457@$|!")
_LEET_HINT = re.compile(r"[a-z][013457@$|!][a-z]|\b[013457@$][a-z]{2}")
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm"
)  # the folded text is lower case


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Budgets that keep decoding bounded on any input."""

    max_attempts: int = 4096  # runs decoded per message, per encoding
    max_run_chars: int = 16_384  # characters of one run that are decoded
    max_decoded_chars: int = 65_536  # decoded characters per message, all runs together


DECODE_LIMITS = DecodeLimits()

_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
#: hex of text always has digits (every byte's high nibble); escaped forms have their marker
_HEX_RUNS = (
    (search.DIGITS, re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Fa-f])")),
    (("\\x",), re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8,}")),
    (("%",), re.compile(r"(?:%[0-9A-Fa-f]{2}){8,}")),
)
_HAS_UPPER = re.compile(r"[A-Z]")
_HAS_LOWER = re.compile(r"[a-z]")


def _as_text(data: bytes) -> str | None:
    """Decoded bytes that are readable text, or None (binary data, images, hashes)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8:
        return None
    readable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return text if readable >= 0.9 * len(text) else None


def _decode_base64(run: str) -> bytes | None:
    body = run.rstrip("=").translate(str.maketrans("-_", "+/"))
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode_hex(run: str) -> bytes | None:
    digits = run.replace("\\x", "").replace("%", "")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


@dataclass(slots=True)
class _Budget:
    limits: DecodeLimits
    decoded: int = 0
    hit: list[str] = field(default_factory=list)

    def note(self, limit: str) -> None:
        if limit not in self.hit:
            self.hit.append(limit)


def _decoded_views(
    norm: Normalised,
    via: str,
    runs: Iterable[re.Match[str]],
    decode: Callable[[str], bytes | None],
    plausible: Callable[[str], bool],
    budget: _Budget,
) -> list[View]:
    views: list[View] = []
    attempts = 0
    for match in runs:
        run = match.group()
        if not plausible(run):
            continue
        if attempts == budget.limits.max_attempts:
            budget.note(f"{via}_runs")
            break
        if budget.decoded >= budget.limits.max_decoded_chars:
            budget.note("decoded_chars")
            break
        attempts += 1
        cut = run[: budget.limits.max_run_chars]
        if via == "hex" and len(cut) % 2:
            cut = cut[:-1]
        data = decode(cut)
        text = _as_text(data) if data else None
        if text is None:
            continue
        if len(cut) < len(run):
            budget.note(f"{via}_run_length")
        budget.decoded += len(text)
        span = norm.surface_map.span(*match.span())
        folded = fold(text)
        views.append(View(via, folded, encoded=span, vocabulary=search.Vocabulary(folded)))
    return views


def _base64_plausible(run: str) -> bool:
    # base64 of text always mixes cases; identifiers and hex hashes rarely do
    return _HAS_UPPER.search(run) is not None and _HAS_LOWER.search(run) is not None


def injection_views(
    norm: Normalised, limits: DecodeLimits = DECODE_LIMITS
) -> tuple[list[View], list[str]]:
    """Every view the injection rules read, and the names of the budgets that ran out."""
    words = search.Vocabulary(norm.folded)
    views = [View("text", norm.folded, norm.folded_map, vocabulary=words)]
    if next(search.finditer((_LEET_HINT,), norm.folded, _LEET_CHARS, 4), None):
        leet = norm.folded.translate(_LEET)
        views.append(View("leet", leet, norm.folded_map, vocabulary=search.Vocabulary(leet)))
    rot13 = norm.folded.translate(_ROT13)
    views.append(View("rot13", rot13, norm.folded_map, vocabulary=words.translated(rot13, _ROT13)))
    budget = _Budget(limits)
    base64_runs = _BASE64_RUN.finditer(norm.surface)
    views += _decoded_views(norm, "base64", base64_runs, _decode_base64, _base64_plausible, budget)
    hex_runs = itertools.chain.from_iterable(
        search.finditer((pattern,), norm.surface, triggers, 64) for triggers, pattern in _HEX_RUNS
    )
    views += _decoded_views(norm, "hex", hex_runs, _decode_hex, lambda _run: True, budget)
    return views, budget.hit
