"""Grounded answers: a few sentences quoted from the best passage, no rewording.

Quoting keeps the answer exactly as true as the knowledge base; the router adds the AI
disclosure and any note about the answer's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from agents.passages import Passage, split_sentences

MAX_CHARS = 600
MAX_SENTENCES = 4
MIN_CHARS = 160

_MARKUP = re.compile(r"[*_#`>|]+|\[(.*?)\]\(.*?\)")


def plain(text: str) -> str:
    """Strip markdown remnants (emphasis, headings, links) and collapse whitespace."""
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or " ", text).split())


def _clip(sentence: str, limit: int) -> str:
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"


def _words(sentence: str) -> set[str]:
    return set(re.findall(r"\w+", sentence.lower()))


def drop_repeats(sentences: Sequence[str], first: int) -> tuple[list[str], int]:
    """Drop sentences that repeat the previous one (PTV summaries reappear, lengthened, as
    the description's first sentence); the longer wording is kept.

    Returns the sentences and how many of them come from the first ``first`` inputs.
    """
    kept: list[str] = []
    kept_first = 0
    for n, sentence in enumerate(sentences):
        words = _words(sentence)
        if (
            kept
            and words
            and (len(words & _words(kept[-1])) >= 0.7 * min(len(words), len(_words(kept[-1]))))
        ):
            if len(sentence) > len(kept[-1]):
                kept[-1] = sentence
            continue
        kept.append(sentence)
        kept_first += n < first
    return kept, kept_first


def shorten(
    sentences: Sequence[str],
    relevance: Callable[[Sequence[str]], Sequence[float]] | None = None,
    max_chars: int = MAX_CHARS,
    first_passage_sentences: int = 0,
) -> str:
    """2–4 sentences in their original order, starting at the most relevant one.

    The start is chosen among the first ``first_passage_sentences`` (the best passage; all
    when 0); later sentences only continue the answer.
    """
    cleaned = [plain(s) for s in sentences]
    first = first_passage_sentences or len(cleaned)
    sentences, first_passage_sentences = drop_repeats([s for s in cleaned if s], first)
    if not sentences:
        return ""
    start = 0
    if relevance is not None and len(sentences) > 1:
        scores = list(relevance(sentences[:first_passage_sentences] or sentences))
        start = max(range(len(scores)), key=lambda i: scores[i])
        # Open with the first sentence when it is about as good: it usually sets the topic.
        if scores[0] >= 0.8 * scores[start]:
            start = 0
    chosen: list[str] = []
    length = 0
    for s in sentences[start:]:
        if chosen and (len(chosen) >= MAX_SENTENCES or length + 1 + len(s) > max_chars):
            break
        s = _clip(s, max_chars - length - (1 if chosen else 0)) if not chosen else s
        chosen.append(s)
        length += len(s) + (1 if len(chosen) > 1 else 0)
        if length >= MIN_CHARS and len(chosen) >= 2:
            break
    return " ".join(chosen)


def compose_answer(
    passages: Sequence[Passage],
    relevance: Callable[[Sequence[str]], Sequence[float]] | None = None,
) -> str:
    """Answer text from the best passage of one document, continued by the ones after it."""
    if not passages:
        return ""
    first = split_sentences(passages[0].text)
    rest = [s for p in passages[1:] for s in split_sentences(p.text)]
    return shorten([*first, *rest], relevance, first_passage_sentences=len(first))
