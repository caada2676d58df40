"""Lexical retrieval over an assistant's knowledge: Okapi BM25 over common questions, exact-ish
matching of fixed responses, and the context test of lessons. Pure functions, no I/O."""

from __future__ import annotations

import heapq
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


class Bm25Index:
    """Okapi BM25 over documents, built once (tokenising is the expensive part) and searched per
    turn through an inverted index: a query costs the postings of its terms, not one pass over
    every document. The question (name) counts twice: it is what users ask."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.documents = list(documents)
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []
        for index, document in enumerate(self.documents):
            bag = Counter(terms(f"{document.name} {document.name} {document.content}"))
            self.lengths.append(sum(bag.values()))
            for term, count in bag.items():
                self.postings.setdefault(term, []).append((index, count))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0

    def __len__(self) -> int:
        return len(self.documents)

    def search(self, query: str, *, limit: int = 3) -> list[Scored]:
        """The documents sharing terms with the query, best first (score > 0 only)."""
        total = len(self.documents)
        scores: dict[int, float] = {}
        for term in set(terms(query)):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
            for index, tf in postings:
                norm = K1 * (1 - B + B * self.lengths[index] / (self.average or 1.0))
                scores[index] = scores.get(index, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        best = heapq.nsmallest(
            limit, scores.items(), key=lambda item: (-item[1], self.documents[item[0]].item_id)
        )
        return [Scored(self.documents[index], score) for index, score in best if score > 0]


EMPTY_INDEX = Bm25Index(())


def bm25(query: str, documents: Sequence[Document], *, limit: int = 3) -> list[Scored]:
    """One-off search (builds the index each time; the pipeline keeps built indexes)."""
    return Bm25Index(documents).search(query, limit=limit)


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
