"""The offline triage agent: no LLM, no network, no downloads.

Language identification (lingua), rules for what scores cannot carry (urgency, personal
cases, asking for a person, small talk), hybrid retrieval over passages (character n-grams
plus multilingual e5 vectors) and a quoted answer with a calibrated confidence.

``from_documents`` returns within about two seconds (the language detector's model load, once
per process); the lexical index and then any passage vectors missing from the cache are built
in background threads: every title and first passage, then the rest. Until those first ones
exist the agent ranks lexically only, with its own, more cautious confidence model; from then
on it ranks with the vectors there are, and answers improve as the others arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agents.answer import compose_answer
from agents.base import Assessment, Document, Intent, TriageRequest
from agents.batching import BatchRunner
from agents.language import LanguageGuess, detect_language
from agents.language import preload as preload_language_detector
from agents.passages import Passage, Title, all_passages, document_titles
from agents.retrieval import (
    LEXICAL_WEIGHT,
    DocHit,
    HybridRetriever,
    Ranking,
    confidence_from,
    expand_query,
)
from agents.rules import RuleHits, apply_rules, fact_asked, holds_fact
from agents.rules import preload as preload_rules
from agents.vectors import DenseIndex, E5Embedder, Embedder, VectorCache, VectorStore
from router.events import SourceRef

# Confidence ceilings for cases where a good score still does not make a safe answer.
UNSUPPORTED_LANGUAGE_CAP = 0.3
# Asked for opening hours or contact details the matched text does not contain.
MISSING_FACT_CAP = 0.3
MAX_SOURCES = 3
# Head start of a document's summary paragraph when choosing the passage to quote.
SUMMARY_BONUS = 0.02
# Follow-ups this short are read together with the resident's previous message.
FOLLOW_UP_WORDS = 3


# Placeholder in assess_many's result list until the batch's retrieval fills it.
_PENDING = Exception("not assessed")


class OfflineAgent:
    name = "offline"

    def __init__(
        self,
        docs: Sequence[Document],
        *,
        doc_url_template: str | None = None,
        vector_cache: Path | None = None,
        embedder: Callable[[], Embedder] = E5Embedder,
        dense: bool = True,
        shared_vectors: Callable[[str], VectorStore] | None = None,
    ) -> None:
        """``shared_vectors``: given the model id, a store shared with other workers (the
        database), laid under the ``vector_cache`` file."""
        self.docs = {d.id: d for d in docs}
        self.passages: list[Passage] = all_passages(list(self.docs.values()))
        self.titles: list[Title] = document_titles(list(self.docs.values()))
        self._doc_passages: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            self._doc_passages.setdefault(p.doc_id, []).append(i)
        self.doc_url_template = doc_url_template
        self._retriever: HybridRetriever | None = None
        self._lexical_ready = threading.Event()
        # Vectors of different models never mix in one cache.
        model_id = str(getattr(embedder, "model_id", "custom-embedder"))
        cache: VectorStore | None = VectorCache(vector_cache, model_id) if vector_cache else None
        if cache is not None and shared_vectors is not None:
            from agents.knowledge.shared_vectors import LayeredVectors

            cache = LayeredVectors(cache, shared_vectors(model_id))
        n = len(self.passages)
        self.dense: DenseIndex | None = (
            DenseIndex(
                [p.key for p in self.passages] + [t.key for t in self.titles],
                [p.indexed_text for p in self.passages] + [t.text for t in self.titles],
                embedder,
                cache,
                # Every title and each language version's first passage (PTV: the summary)
                # first: then every document is in the dense ranking, and answers improve
                # as the remaining passages arrive.
                first=[i for i, p in enumerate(self.passages) if p.index == 0]
                + list(range(n, n + len(self.titles))),
            )
            if dense
            else None
        )
        # Synchronous on purpose: lingua's model load holds the GIL, so in a thread it would
        # stall the event loop later instead of costing its ~1.5 s here, once per process.
        preload_language_detector()
        preload_rules()
        # One thread assesses whatever has queued up, as one batch: under load that is
        # cheaper per message than parallel threads fighting over the GIL and the cores.
        self._batches: BatchRunner[TriageRequest, Assessment] = BatchRunner(
            self.assess_many, name="offline-triage"
        )
        threading.Thread(target=self._build_lexical, name="lexical-index", daemon=True).start()

    @classmethod
    def from_documents(
        cls,
        docs: list[Document],
        *,
        doc_url_template: str | None = None,
        vector_cache: Path | None = None,
    ) -> OfflineAgent:
        return cls(docs, doc_url_template=doc_url_template, vector_cache=vector_cache)

    def _build_lexical(self) -> None:
        try:
            if self.passages:
                self._retriever = HybridRetriever(self.passages, self.titles)
            # Dense indexing only now: on a small machine it would take the cores the lexical
            # index needs, and lexical retrieval is what answers until the first vectors exist.
            if self.dense is not None and self.passages:
                self.dense.start()
        finally:
            # Even on failure: triage then finds no index and hands off instead of hanging.
            self._lexical_ready.set()

    def close(self) -> None:
        """Stop the background vector indexer (the vectors so far stay in the cache)."""
        self._lexical_ready.wait(30)  # the lexical thread starts the indexer
        if self.dense is not None:
            self.dense.stop()

    def passages_of(self, doc: Document) -> list[Passage]:
        """``doc``'s passages as ``agents.passages.document_passages`` splits them, already
        split (a document this agent does not hold has none)."""
        return [self.passages[i] for i in self._doc_passages.get(doc.id, ())]

    @property
    def retriever(self) -> HybridRetriever | None:
        """The lexical/hybrid ranker, once its index is built."""
        return self._retriever

    @property
    def ready_fraction(self) -> float:
        """Share of passages with a dense vector (1.0 when dense retrieval is off)."""
        return self.dense.fraction if self.dense is not None else 1.0

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Block until the lexical index exists (the agent answers from then on)."""
        return self._lexical_ready.wait(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the lexical index and all passage vectors exist (tests, eval)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._lexical_ready.wait(timeout):
            return False
        if self.dense is None or not self.passages:
            return True
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.dense.wait(left)

    async def triage(self, request: TriageRequest) -> Assessment:
        return await self._batches.submit(request)

    # The synchronous core, run in the triage thread by triage().
    def assess(self, request: TriageRequest) -> Assessment:
        result = self.assess_many([request])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def assess_many(self, requests: Sequence[TriageRequest]) -> list[Assessment | Exception]:
        """Assess several messages at once: one embedding call, one lexical transform.

        A failure of one message is returned in its place; the others still get through.
        """
        out: list[Assessment | Exception] = []
        searches: list[tuple[int, TriageRequest, RuleHits, LanguageGuess]] = []
        for request in requests:
            try:
                rules = apply_rules(request.text)
                lang = detect_language(request.text, request.language_hint)
            except Exception as e:
                out.append(e)
                continue
            if rules.intent in (Intent.GREETING, Intent.THANKS, Intent.OTHER):
                out.append(
                    Assessment(
                        language=lang.language,
                        reply_language=lang.reply_language,
                        intent=rules.intent,
                        confidence=0.0,
                        reason=rules.explain() or "no words to search for",
                        urgent=rules.urgent is not None,
                        personal_case=rules.personal_case is not None,
                        wants_human=rules.wants_human is not None,
                    )
                )
                continue
            searches.append((len(out), request, rules, lang))
            out.append(_PENDING)
        if not searches:
            return out
        texts = [expand_query(self._query_text(r)) for _, r, _, _ in searches]
        try:
            rankings = self._rank_many(texts)
        except Exception as e:
            for position, *_ in searches:
                out[position] = e
            return out
        for (position, request, rules, lang), ranking in zip(searches, rankings, strict=True):
            try:
                out[position] = self._assessment(request, rules, lang, ranking)
            except Exception as e:
                out[position] = e
        return out

    def _query_text(self, request: TriageRequest) -> str:
        if request.history and len(request.text.split()) <= FOLLOW_UP_WORDS:
            return f"{request.history[-1]} {request.text}"
        return request.text

    def _rank(self, text: str) -> Ranking:
        return self._rank_many([text])[0]

    def _rank_many(self, texts: list[str]) -> list[Ranking]:
        self._lexical_ready.wait()
        retriever = self._retriever
        if retriever is None:
            return [
                Ranking(hits=(), passage_lexical=np.zeros(0), passage_dense=None) for _ in texts
            ]
        lexical = retriever.lexical.scores_many(texts)
        dense = self.dense
        if dense is not None and dense.usable:
            ready = dense.ready.copy()  # the indexer thread keeps adding
            queries = dense.embedder().query(texts)
            # einsum, not BLAS: BLAS worker threads spin against the other threads on small
            # machines (with the wheel's e5 engine a 2-core box went from 16 to 40 ms).
            cosines = np.einsum("ij,kj->ki", dense.vectors, queries).astype(np.float64)
            # A passage without its vector yet is no candidate: its document scores by the
            # passages that have one (at least the first: ``usable``).
            cosines[:, ~ready] = -np.inf
            n = len(self.passages)
            return [
                retriever.rank(text, c[:n], c[n:], passage_lexical=lex)
                for text, c, lex in zip(texts, cosines, lexical, strict=True)
            ]
        return [
            retriever.rank(text, passage_lexical=lex)
            for text, lex in zip(texts, lexical, strict=True)
        ]

    def _assessment(
        self, request: TriageRequest, rules: RuleHits, lang: LanguageGuess, ranking: Ranking
    ) -> Assessment:
        if not ranking.hits:
            return Assessment(
                language=lang.language,
                reply_language=lang.reply_language,
                confidence=0.0,
                urgent=rules.urgent is not None,
                personal_case=rules.personal_case is not None,
                wants_human=rules.wants_human is not None,
                reason="; ".join(x for x in (rules.explain(), "no searchable knowledge") if x),
            )
        best = ranking.hits[0]
        doc = self.docs[best.doc_id]
        passages = self._answer_passages(best, lang.reply_language, ranking)
        answer_language = passages[0].lang
        answer = compose_answer(passages, self.relevance(request.text)) or None
        confidence = confidence_from(ranking.features)
        notes: list[str] = []
        if not lang.supported:
            confidence = min(confidence, UNSUPPORTED_LANGUAGE_CAP)
            notes.append(f"message language {lang.language} is not supported")
        fact = fact_asked(request.text)
        if fact and not any(holds_fact(fact, p.text) for p in passages):
            confidence = min(confidence, MISSING_FACT_CAP)
            notes.append(f"asks for {fact}, which the matched text does not give")
        sources = tuple(
            SourceRef(
                doc_id=h.doc_id,
                title=self.docs[h.doc_id].title_in(lang.reply_language),
                url=self.source_url(self.docs[h.doc_id], answer_language),
            )
            for h in self._source_hits(ranking)
        )
        rule_text = rules.explain()
        reason = "; ".join(
            x
            for x in (
                rule_text,
                f"best match '{doc.title_in('en')}' ({doc.id}), passage {passages[0].index} "
                f"in {answer_language}, confidence {confidence:.2f}",
                *notes,
            )
            if x
        )
        scores = {**ranking.features, "top_score": best.score}
        return Assessment(
            language=lang.language,
            reply_language=lang.reply_language,
            intent=Intent.QUESTION,
            answer=answer,
            answer_language=answer_language if answer else None,
            sources=sources if answer else (),
            confidence=round(min(max(confidence, 0.0), 1.0), 4),
            department=doc.departments[0] if doc.departments else None,
            urgent=rules.urgent is not None,
            personal_case=rules.personal_case is not None,
            wants_human=rules.wants_human is not None,
            reason=reason,
            ranked_doc_ids=ranking.doc_ids(10),
            scores={k: round(v, 4) for k, v in scores.items()},
        )

    def _answer_passages(self, best: DocHit, reply: str, ranking: Ranking) -> list[Passage]:
        """Best passage of the document in the reply language (else any), then the next ones.

        Passages are scored like documents; the summary (passage 0) gets a small head start
        because it states what the service is.
        """
        indices = self._doc_passages[best.doc_id]
        score = LEXICAL_WEIGHT * ranking.passage_lexical[indices]
        if ranking.passage_dense is not None:
            score = score + ranking.passage_dense[indices]
        score = score + np.array(
            [SUMMARY_BONUS if self.passages[i].index == 0 else 0.0 for i in indices]
        )
        in_reply = [k for k, i in enumerate(indices) if self.passages[i].lang == reply]
        pool = in_reply or list(range(len(indices)))
        chosen = indices[max(pool, key=lambda k: float(score[k]))]
        lang = self.passages[chosen].lang
        following = [i for i in indices if i > chosen and self.passages[i].lang == lang]
        return [self.passages[chosen], *(self.passages[i] for i in following[:2])]

    def _source_hits(self, ranking: Ranking) -> list[DocHit]:
        top = ranking.hits[0].score
        return [h for h in ranking.hits[:MAX_SOURCES] if h.score >= 0.85 * top]

    def relevance(self, question: str) -> Callable[[Sequence[str]], Sequence[float]] | None:
        """Lexical similarity of texts to ``question`` (None until the index is built)."""
        retriever = self._retriever
        if retriever is None:
            return None
        return lambda sentences: retriever.lexical.similarity(question, sentences)

    def source_url(self, doc: Document, lang: str) -> str | None:
        """The link to ``doc`` for a reader of ``lang``."""
        if self.doc_url_template:
            # Link the version the resident can read: the answer's language when it exists.
            version = lang if lang in doc.text else next(iter(doc.text), lang)
            return self.doc_url_template.format(doc_id=doc.id, lang=version)
        return doc.url
