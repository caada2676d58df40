"""Lexical retrieval over an assistant's knowledge: Okapi BM25 over common questions, exact-ish
matching of fixed responses, and the context test of lessons. Pure functions, no I/O."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from how i if in is it me my of on or our
    so that the this to was we what when where which who why will with you your de la el en
    es lo los las un una y que por para con se del al""".split()
)
ALWAYS = frozenset({"", "always", "every answer", "all", "*", "any"})
K1 = 1.5
B = 0.75


def normalise(text: str) -> str:
    """Lowercase, accents removed, punctuation dropped, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD.findall(stripped))


def terms(text: str) -> list[str]:
    return [word for word in normalise(text).split() if word not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class Document:
    item_id: int
    name: str
    content: str


@dataclass(frozen=True, slots=True)
class Scored:
    document: Document
    score: float


def bm25(query: str, documents: Sequence[Document], *, limit: int = 3) -> list[Scored]:
    """The documents that share terms with the query, best first (score > 0 only). The question
    (name) counts twice: it is what users ask."""
    query_terms = set(terms(query))
    if not query_terms or not documents:
        return []
    bags = [Counter(terms(f"{d.name} {d.name} {d.content}")) for d in documents]
    lengths = [sum(bag.values()) for bag in bags]
    average = (sum(lengths) / len(lengths)) or 1.0
    frequency = Counter(term for bag in bags for term in query_terms if term in bag)
    total = len(documents)
    scored: list[Scored] = []
    for document, bag, length in zip(documents, bags, lengths, strict=True):
        score = 0.0
        for term in query_terms:
            tf = bag.get(term, 0)
            if tf:
                idf = math.log(1 + (total - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        if score > 0:
            scored.append(Scored(document, score))
    scored.sort(key=lambda s: (-s.score, s.document.item_id))
    return scored[:limit]


def fixed_match(message: str, candidates: Sequence[tuple[Document, str]]) -> Document | None:
    """The fixed response whose name (or topic) the message is: equal after normalising, or the
    same words in any order with at most a quarter of them differing (Jaccard >= 0.75)."""
    said = normalise(message)
    said_words = set(said.split())
    if not said_words:
        return None
    best: tuple[float, Document] | None = None
    for document, topic in candidates:
        for label in (document.name, topic):
            wanted = normalise(label)
            if not wanted:
                continue
            if wanted == said:
                return document
            wanted_words = set(wanted.split())
            overlap = len(said_words & wanted_words) / len(said_words | wanted_words)
            if overlap >= 0.75 and (best is None or overlap > best[0]):
                best = (overlap, document)
    return best[1] if best else None


def lesson_applies(context: str, message: str) -> bool:
    """A lesson applies when its context is empty or 'always', or shares a content word
    (3+ letters, not a stopword) with the message."""
    wanted = normalise(context)
    if wanted in ALWAYS:
        return True
    said = {word for word in terms(message) if len(word) >= 3}
    return any(word in said for word in terms(context) if len(word) >= 3)


def lesson_is_general(context: str) -> bool:
    return normalise(context) in ALWAYS
