"""Bounded-time search helpers. `windows`/`finditer` run a pattern only near the literal triggers
that every one of its matches contains (the PII detectors: "@", digits, key prefixes), so a long
text pays a C-speed substring search per trigger and the regex engine only where a match is
possible. `Vocabulary` lists the distinct words of a text, so the injection rules look only for
the start words that occur in it."""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

#: Characters beyond a window's reach kept so that trailing lookaheads and \b see real text.
MARGIN = 64
#: Past this many trigger occurrences the pattern simply runs over the whole text (one pass).
MAX_WINDOWS = 4096


def windows(text: str, triggers: Sequence[str], reach: int) -> list[tuple[int, int]]:
    """Merged spans of `text` within `reach` characters of a trigger occurrence."""
    if not triggers:
        return [(0, len(text))]
    if len(text) <= reach:  # one window would cover it all: only ask whether a trigger occurs
        return [(0, len(text))] if any(t in text for t in triggers) else []
    spans: list[tuple[int, int]] = []
    for trigger in triggers:
        at = text.find(trigger)
        while at != -1:
            spans.append((max(0, at - reach), at + len(trigger) + reach + MARGIN))
            if len(spans) > MAX_WINDOWS:
                return [(0, len(text))]
            at = text.find(trigger, at + len(trigger))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return [(start, min(end, len(text))) for start, end in merged]


def finditer(
    patterns: Sequence[re.Pattern[str]], text: str, triggers: Sequence[str], reach: int
) -> Iterator[re.Match[str]]:
    """Every match of `patterns` in `text`. Correct when each match contains one of `triggers`
    and is at most `reach` characters long, which the callers' patterns are written to ensure."""
    return finditer_in(patterns, text, windows(text, triggers, reach))


def finditer_in(
    patterns: Sequence[re.Pattern[str]], text: str, spans: Sequence[tuple[int, int]]
) -> Iterator[re.Match[str]]:
    for start, end in spans:
        for pattern in patterns:
            yield from pattern.finditer(text, start, end)


DIGITS = tuple("0123456789")


#: bytes.translate table: ASCII letters and digits stay, every other ASCII byte becomes a space
_ASCII_SPLIT = bytes(b if chr(b).isalnum() else 0x20 for b in range(128)) + bytes(range(128, 256))


@functools.cache
def _split_table() -> dict[int, str]:
    """Non-alphanumeric characters of the blocks where text lives (BMP outside the CJK and Hangul
    blocks, emoji), mapped to a space."""
    ranges = ((0, 0x3400), (0xA000, 0xAC00), (0xF900, 0x10000), (0x1F000, 0x1FC00))
    return {
        cp: " "
        for lo, hi in ranges
        for cp in range(lo, hi)
        if not chr(cp).isalnum() and unicodedata.category(chr(cp)) != "Cn"
    }


class Vocabulary:
    """The distinct words of a text, sorted, to tell at little cost whether any word starts with a
    literal, before paying for a `str.find` pass over the whole text."""

    __slots__ = ("_answers", "text", "words")

    def __init__(self, text: str, words: Iterable[str] | None = None) -> None:
        self.text = text
        if words is None:
            if text.isascii():
                raw = set(text.encode().translate(_ASCII_SPLIT).split())
                words = (w.decode() for w in raw)
            else:
                words = set(text.translate(_split_table()).split())
        self.words = sorted(set(words))
        self._answers: dict[str, bool] = {}

    def translated(self, text: str, table: dict[int, int]) -> Vocabulary:
        """The vocabulary of `text`, which is this text through a letter-for-letter table."""
        return Vocabulary(text, (w.translate(table) for w in self.words))

    def may_contain(self, literal: str) -> bool:
        answer = self._answers.get(literal)
        if answer is None:
            if literal.isalnum():
                at = bisect_left(self.words, literal)
                answer = at < len(self.words) and self.words[at].startswith(literal)
            else:
                answer = literal in self.text
            self._answers[literal] = answer
        return answer
