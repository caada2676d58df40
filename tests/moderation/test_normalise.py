# ruff: noqa: RUF001 (look-alike and full-width characters are the point of these tests)
"""Normalisation: the translate tables, offsets back into the original text, and the guarantees
the scanner's bounded running time rests on."""

from __future__ import annotations

import re
import re._parser as sre_parse  # type: ignore[import-not-found]

import pytest

from chatsvc.moderation import normalise as norm
from chatsvc.moderation import pii, search
from chatsvc.moderation.rules import RULES


def test_surface_and_fold() -> None:
    n = norm.normalise("Ｈｅｌｌｏ\u200b W\u0336orld ﬁne İstanbul Straße — “quoted”")
    assert n.surface == "Hello W\u0336orld fine İstanbul Straße — “quoted”"
    assert n.folded == 'hello world fine istanbul strasse - "quoted"'


def test_tag_characters_become_the_ascii_they_hide() -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "Hi there")
    assert norm.normalise(f"a{hidden}b").surface == "aHi thereb"


def test_confusables_fold_to_latin() -> None:
    assert norm.normalise("раураl ѕесurіtу").folded == "paypal security"


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii text",
        "ﬁﬂ ligatures ﬃ and ㎏ units",
        "zero\u200bwidth\u200c\u200d and \u202ebidi\u202c",
        "e\u0301\u0301 stacked marks and Straße",
        "mixed 中文 and 한국어 and emoji 🏴\U000e0067\U000e0062\U000e007f",
    ],
)
def test_every_view_character_maps_back_to_the_character_that_made_it(text: str) -> None:
    t = norm.tables()
    n = norm.normalise(text)
    for view, mapping, offsets in (
        (n.surface, t.surface.mapping, n.surface_map),
        (n.folded, t.folded.mapping, n.folded_map),
    ):
        for i in range(len(view)):
            start, end = offsets.span(i, i + 1)
            assert end - start == 1
            source = text[start]
            assert view[i] in mapping.get(ord(source), source)


def test_identity_ranges_really_are_identity() -> None:
    # the tables skip these ranges; every code point in them must be left alone by both folds
    changed = [
        hex(cp)
        for lo, hi in norm.IDENTITY_RANGES
        for cp in range(lo, hi + 1)
        if not 0xD800 <= cp <= 0xDFFF and norm._changes(chr(cp))
    ]
    assert changed == []


def test_unchanged_means_unchanged() -> None:
    # _changes() is the filter that keeps the tables small: it must never miss a change
    t = norm.tables()
    for cp in range(0x3400):  # everything up to the CJK blocks, where the changes are
        ch = chr(cp)
        if not norm._changes(ch):
            assert norm.surface_char(ch) == ch and norm.fold_char(ch) == ch, hex(cp)
        assert t.folded.mapping.get(cp, ch) == norm.fold_char(ch)


# --- bounded work --------------------------------------------------------------------------------


def _max_width(pattern: re.Pattern[str]) -> int:
    _, high = sre_parse.parse(pattern.pattern, pattern.flags).getwidth()
    return int(high)


def test_every_rule_pattern_is_bounded() -> None:
    # a bounded pattern matched at a given position does bounded work: no unbounded repetition
    # that could backtrack over the rest of a 1 MB message
    for rule in RULES:
        for p in rule.patterns:
            if rule.target == "views":
                assert _max_width(p.regex) < 2000, (rule.id, p.regex.pattern[:60])


def test_windows_merge_and_fall_back_to_the_whole_text() -> None:
    assert search.windows("abc", (), 5) == [(0, 3)]
    text = "x" * 200 + "key" + "x" * 200 + "key" + "x" * 1000
    assert search.windows(text, ("key",), 10) == [(190, 277), (393, 480)]
    assert search.windows(text, ("key",), 150) == [(50, 620)]
    assert search.windows("7" * 10_000, search.DIGITS, 4) == [(0, 10_000)]  # too many


def test_vocabulary_knows_word_starts() -> None:
    v = search.Vocabulary("please ignore, the <|im_start|> token")
    assert v.may_contain("ignor")
    assert v.may_contain("im")  # "<|im_start|>" splits into words at | and _
    assert not v.may_contain("gnore")  # not a word start: patterns begin at word starts
    assert v.may_contain("<|")
    assert not v.may_contain("[inst]")
    rot = v.translated("cyrnfr vtaber", str.maketrans("abcdefghijklmnopqrstuvwxyz",
                                                      "nopqrstuvwxyzabcdefghijklm"))  # fmt: skip
    assert rot.may_contain("vtabe")


def test_phone_parses_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    # past the cap, phone-shaped numbers are redacted unchecked (conservative), and said so
    from chatsvc.moderation import scan

    monkeypatch.setattr(pii, "MAX_PHONE_PARSES", 2)
    verdict = scan("call +44 20 7946 0958, +44 20 7946 0959 or +44 20 7946 0960")
    assert [f.rule_id for f in verdict.findings if f.kind == "pii"] == [
        "pii.phone", "pii.phone", "pii.phone.unchecked",
    ]  # fmt: skip
    assert verdict.limits_reached == ["phone_parses"]
    assert verdict.redacted_text == "call [PHONE], [PHONE] or [PHONE]"
