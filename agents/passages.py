"""Split each language version of a document into passages (section/paragraph chunks).

Each language version is indexed on its own: dense retrieval finds a resident's question much
better in one clean language than in a mixed text, and an answer can quote the right part.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from agents.base import Document

# Paragraphs shorter than this are merged with the next one (headings, one-line lists).
MIN_PASSAGE_CHARS = 120
# Longer paragraphs are split at sentence ends so a passage stays one topic.
MAX_PASSAGE_CHARS = 900

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÅÄÖÜ0-9\"'(])")


@dataclass(frozen=True, slots=True)
class Passage:
    doc_id: str
    lang: str
    index: int
    title: str
    text: str

    @property
    def indexed_text(self) -> str:
        """What retrieval sees: the title gives every chunk its topic."""
        return f"{self.title}. {self.text}"

    @property
    def key(self) -> str:
        """Content hash: a changed passage gets a new vector, an unchanged one keeps its own."""
        return hashlib.sha256(self.indexed_text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Title:
    """A service's name in one language: matched on its own, it says what the service is."""

    doc_id: str
    lang: str
    text: str

    @property
    def key(self) -> str:
        return hashlib.sha256(f"title\0{self.text}".encode()).hexdigest()


def document_titles(docs: list[Document]) -> list[Title]:
    return [Title(d.id, lang, t) for d in docs for lang, t in d.title.items() if t.strip()]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _split_long(paragraph: str) -> list[str]:
    if len(paragraph) <= MAX_PASSAGE_CHARS:
        return [paragraph]
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(paragraph):
        if current and len(current) + len(sentence) + 1 > MAX_PASSAGE_CHARS:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        chunks.append(current)
    return chunks


def chunk_text(text: str) -> list[str]:
    """Paragraphs, exact repeats dropped, short ones merged forward, long ones split."""
    seen: set[str] = set()
    paragraphs: list[str] = []
    for raw in _PARAGRAPH_BREAK.split(text):
        p = " ".join(raw.split())
        # PTV texts repeat the summary as the opening of the description: keep it once.
        for earlier in paragraphs[:1]:
            if p.startswith(earlier) and len(p) > len(earlier):
                p = p[len(earlier) :].strip()
        if p and p not in seen:
            seen.add(p)
            paragraphs.append(p)
    merged: list[str] = []
    pending = ""
    for p in paragraphs:
        pending = f"{pending} {p}".strip() if pending else p
        if len(pending) >= MIN_PASSAGE_CHARS:
            merged.extend(_split_long(pending))
            pending = ""
    if pending:
        if merged and len(merged[-1]) + len(pending) <= MAX_PASSAGE_CHARS:
            merged[-1] = f"{merged[-1]} {pending}"
        else:
            merged.append(pending)
    return merged


def document_passages(doc: Document) -> list[Passage]:
    out: list[Passage] = []
    for lang, text in doc.text.items():
        title = doc.title.get(lang) or doc.title_in(lang)
        chunks = chunk_text(text) or [title]
        out.extend(
            Passage(doc_id=doc.id, lang=lang, index=i, title=title, text=chunk)
            for i, chunk in enumerate(chunks)
        )
    return out


def all_passages(docs: list[Document]) -> list[Passage]:
    return [p for doc in docs for p in document_passages(doc)]


def vector_keys(docs: list[Document]) -> set[str]:
    """The content keys the dense index keeps vectors under for ``docs``."""
    return {p.key for p in all_passages(docs)} | {t.key for t in document_titles(docs)}
