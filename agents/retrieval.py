"""Hybrid retrieval over passages: character n-gram TF-IDF plus multilingual e5 vectors.

Character 3–5-grams cope with Finnish and Swedish inflection and compounds without a stemmer
(päiväkotiin ~ päiväkotihoito); e5 matches meaning across languages (a Swedish question finds
a text that only exists in Finnish). Documents are scored by their best passage.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer

from agents.passages import Passage, Title

Vector = npt.NDArray[np.float64]

# Weight of the lexical cosine added to the dense one (see fuse(); measured in RETRIEVAL.md).
LEXICAL_WEIGHT = 0.25
# Transformed texts (questions, answer sentences) kept for reuse.
ROW_CACHE = 20_000


@dataclass(frozen=True, slots=True)
class DocHit:
    doc_id: str
    score: float
    lexical: float
    dense: float
    passage: int  # index into the passage list of the best passage


@dataclass(frozen=True, slots=True)
class Ranking:
    hits: tuple[DocHit, ...]
    passage_lexical: Vector
    passage_dense: Vector | None
    features: dict[str, float] = field(default_factory=dict)

    def doc_ids(self, n: int = 10) -> tuple[str, ...]:
        return tuple(h.doc_id for h in self.hits[:n])


# Residents write Sweden-Swedish words where Finnish public texts use Finland-Swedish ones;
# a question containing the first (any inflection) also searches for the second.
SWEDISH_VARIANTS: dict[str, str] = {
    "vårdcentral": "hälsocentral",
    "förskoleklass": "förskoleundervisning",
    "förskola": "dagvård småbarnspedagogik daghem",
    "dagis": "dagvård daghem",
    "fritids": "eftermiddagsverksamhet",
    "hemtjänst": "hemservice",
    "äldreboende": "serviceboende",
    "skolskjuts": "skoltransport",
    "färdtjänst": "transporttjänst",
    "försörjningsstöd": "utkomststöd",
    "socialbidrag": "utkomststöd",
    "barnavårdscentral": "barnrådgivning",
    "bvc": "barnrådgivning",
}
_TOKEN = re.compile(r"\w+")


def expand_query(text: str) -> str:
    """The question plus the Finland-Swedish names of Sweden-Swedish terms in it."""
    extra = [
        variant
        for token in _TOKEN.findall(text.lower())
        for word, variant in SWEDISH_VARIANTS.items()
        if token.startswith(word)
    ]
    return " ".join([text, *dict.fromkeys(extra)])


# A transformed text: its n-gram columns (ascending) and TF-IDF weights.
Row = tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]


class LexicalIndex:
    """char_wb 3–5-gram TF-IDF, sublinear tf; a new question costs ~0.1 ms to transform and
    ~0.1 ms to score against the demo KB's 2,351 passages."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True, min_df=1
        )
        # Column-major (one column an n-gram): a query reads only its own n-grams' postings,
        # ~1 ms at 62,000 passages where a row-major product took ~160 ms.
        self._by_gram = self._vectorizer.fit_transform([p.indexed_text for p in passages]).tocsc()
        # Rows of texts seen lately: a question is read again to choose the sentences of its
        # answer, and the sentences of much-asked services recur. Kept as plain arrays:
        # scipy's stacking and indexing of one-row matrices cost more than the arithmetic.
        self._rows: OrderedDict[str, Row] = OrderedDict()
        self._blocks: OrderedDict[tuple[str, ...], _Block] = OrderedDict()
        self._analyze: Callable[[str], list[str]] | None = None
        self._lock = threading.Lock()

    def _row(self, text: str) -> Row:
        """``TfidfVectorizer.transform`` of one text, step for step (the same n-grams, counts,
        ``log(tf) + 1``, idf product and row L2 norm summed in column order, so the same
        floats: tests compare them), without its ~0.4 ms of validation and matrix building."""
        if self._analyze is None:
            self._analyze = self._vectorizer.build_analyzer()
        vocabulary = self._vectorizer.vocabulary_
        counts: dict[int, int] = {}
        for gram in self._analyze(text):
            column = vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        columns = np.array(sorted(counts), dtype=np.int32)
        values = np.array([counts[c] for c in columns.tolist()], dtype=np.float64)
        np.log(values, out=values)
        values += 1.0
        values *= self._vectorizer.idf_[columns]
        total = 0.0
        for v in values.tolist():
            total += v * v
        if total != 0.0:
            values /= math.sqrt(total)
        return columns, values

    def _transform(self, texts: Sequence[str]) -> list[Row]:
        with self._lock:
            for t in dict.fromkeys(texts):
                if t not in self._rows:
                    self._rows[t] = self._row(t)
            for t in texts:
                self._rows.move_to_end(t)
            rows = [self._rows[t] for t in texts]
            while len(self._rows) > ROW_CACHE:
                self._rows.popitem(last=False)
        return rows

    def similarity(self, text: str, others: Sequence[str]) -> list[float]:
        """Cosine of ``text`` to each of ``others`` in the same n-gram space (sentence choice)."""
        key = tuple(others)
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
        if block is None:
            # The sentences of one answer's passages come back together: keep them stacked.
            block = _Block(self._transform(others))
            with self._lock:
                self._blocks[key] = block
                while len(self._blocks) > ROW_CACHE // 10:
                    self._blocks.popitem(last=False)
        (q,) = self._transform([text])
        cosines: list[float] = block.dot(q).tolist()
        return cosines

    def scores(self, text: str) -> Vector:
        row: Vector = self.scores_many([text])[0]
        return row

    def scores_many(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """One row of passage cosines per text; a batch costs about one query."""
        rows = self._transform(texts)
        grams = np.unique(np.concatenate([columns for columns, _ in rows]))
        postings = self._by_gram[:, grams]  # passages × the queries' n-grams
        weights = np.zeros((len(rows), len(grams)))
        for t, (columns, values) in enumerate(rows):
            weights[t, np.searchsorted(grams, columns)] = values
        scores: npt.NDArray[np.float64] = np.asarray(postings @ weights.T).T
        return scores


class _Block:
    """Transformed texts stacked (all their entries one after the other), for dot products
    with one more row."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.count = len(rows)
        self.columns = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, np.int32)
        self.values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        self.row_of = np.repeat(np.arange(len(rows)), [len(c) for c, _ in rows])

    def dot(self, row: Row) -> npt.NDArray[np.float64]:
        """Each text's dot product with ``row``: the products of shared n-grams summed in
        column order, as scipy's sparse product sums them (the same floats)."""
        columns, values = row
        if not len(columns):
            return np.zeros(self.count)
        at = np.minimum(np.searchsorted(columns, self.columns), len(columns) - 1)
        shared = columns[at] == self.columns
        products = self.values[shared] * values[at[shared]]
        sums = np.bincount(self.row_of[shared], weights=products, minlength=self.count)
        return sums.astype(np.float64, copy=False)


class DocGroups:
    """Which document each passage belongs to, prepared for per-document maxima.

    Passages come document by document, so each document's are one run: a maximum per run
    (``reduceat``) costs one pass where sorting all scores cost ~0.5 ms a question.
    """

    def __init__(self, passage_doc: npt.NDArray[np.int64], n_docs: int) -> None:
        self.passage_doc = passage_doc
        self.n_docs = n_docs
        self._runs = bool(np.all(np.diff(passage_doc) >= 0)) if len(passage_doc) else False
        if self._runs:
            self._starts = np.flatnonzero(np.r_[True, np.diff(passage_doc) != 0])
            self._docs = passage_doc[self._starts]
            self._index = np.arange(len(passage_doc))
            # The run of each passage, to compare a score with its run's maximum.
            self._run_of = np.repeat(
                np.arange(len(self._starts)), np.diff(np.r_[self._starts, len(passage_doc)])
            )

    def top(self, scores: Vector) -> Vector:
        """Each document's best score (``max`` without the passage that has it)."""
        if not self._runs or not len(scores):
            return self.max(scores)[0]
        best = np.full(self.n_docs, -np.inf)
        best[self._docs] = np.maximum.reduceat(scores, self._starts)
        return best

    def max(self, scores: Vector) -> tuple[Vector, npt.NDArray[np.int64]]:
        best = np.full(self.n_docs, -np.inf)
        arg = np.zeros(self.n_docs, dtype=np.int64)
        if not len(scores):
            return best, arg
        if not self._runs:
            order = np.argsort(scores, kind="stable")  # ascending: later writes win
            best[self.passage_doc[order]] = scores[order]
            arg[self.passage_doc[order]] = order
            return best, arg
        top = np.maximum.reduceat(scores, self._starts)
        best[self._docs] = top
        holds = np.where(scores == top[self._run_of], self._index, -1)
        arg[self._docs] = np.maximum.reduceat(holds, self._starts)
        return best, arg


def fuse(lexical: Vector, dense: Vector | None) -> Vector:
    """Dense cosine plus a fraction of the lexical cosine, both raw.

    Raw values keep their meaning: a weak lexical top (shared n-grams of function words) adds
    little, a strong one (the service's own term) decides between close dense neighbours.
    Rescaling each by its maximum instead made noise-level lexical tops count fully.
    """
    if dense is None:
        return lexical
    return dense + LEXICAL_WEIGHT * lexical


class HybridRetriever:
    """Ranks documents for a question; dense scores join once every passage has a vector."""

    def __init__(self, passages: Sequence[Passage], titles: Sequence[Title] = ()) -> None:
        self.passages = list(passages)
        self.doc_ids: list[str] = list(dict.fromkeys(p.doc_id for p in self.passages))
        position = {d: i for i, d in enumerate(self.doc_ids)}
        self.passage_doc = np.array([position[p.doc_id] for p in self.passages], dtype=np.int64)
        self.title_doc = np.array(
            [position[t.doc_id] for t in titles if t.doc_id in position], dtype=np.int64
        )
        self._passage_groups = DocGroups(self.passage_doc, len(self.doc_ids))
        self._title_groups = DocGroups(self.title_doc, len(self.doc_ids))
        self.lexical = LexicalIndex(self.passages)
        langs = np.array([p.lang for p in self.passages])
        self._lang_groups = [np.flatnonzero(langs == lang) for lang in sorted(set(langs))]

    def center_by_language(self, passage_dense: Vector) -> Vector:
        """Subtract each passage language's median cosine for this query.

        e5 scores a same-language pair higher than an equally relevant pair across languages,
        so an English question would otherwise prefer any English text to the right Finnish one.
        """
        out = passage_dense.copy()
        finite = np.isfinite(passage_dense)  # -inf: no vector yet (OfflineAgent)
        every = bool(finite.all())
        for group in self._lang_groups:
            known = passage_dense[group] if every else passage_dense[group[finite[group]]]
            if len(known):
                out[group] -= _median(known)
        return out

    def rank(
        self,
        text: str,
        passage_dense: Vector | None = None,
        title_dense: Vector | None = None,
        top: int = 10,
        passage_lexical: Vector | None = None,
    ) -> Ranking:
        """Rank documents; ``title_dense`` (cosines to each title) only informs confidence.

        ``passage_lexical``: this text's lexical scores when already computed in a batch.
        """
        p_lex = self.lexical.scores(text) if passage_lexical is None else passage_lexical
        lex, lex_arg = self._passage_groups.max(p_lex)
        dense: Vector | None = None
        dense_arg: npt.NDArray[np.int64] | None = None
        dense_raw: Vector | None = None
        if passage_dense is not None:
            dense_raw = self._passage_groups.top(passage_dense)
            dense, dense_arg = self._passage_groups.max(self.center_by_language(passage_dense))
        fused = fuse(lex, dense)
        order = np.argsort(-fused, kind="stable")[:top]
        titles: Vector | None = None
        if title_dense is not None and len(title_dense) == len(self.title_doc):
            titles = self._title_groups.top(title_dense)
        hits = tuple(
            DocHit(
                doc_id=self.doc_ids[i],
                score=float(fused[i]),
                lexical=float(lex[i]),
                dense=float(dense[i]) if dense is not None else 0.0,
                passage=int(dense_arg[i] if dense_arg is not None else lex_arg[i]),
            )
            for i in order
        )
        return Ranking(
            hits=hits,
            passage_lexical=p_lex,
            passage_dense=passage_dense,
            features=ranking_features(lex, dense, dense_raw, fused, order, titles),
        )


def _median(values: Vector) -> np.float64:
    """``np.median`` of a non-empty vector, without its generic machinery (~25 µs a call):
    the same middle order statistics, the same mean of the two for an even count."""
    half = len(values) // 2
    if len(values) % 2:
        return np.float64(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return np.float64((part[half - 1] + part[half]) / 2)


def _top_two(values: Vector) -> tuple[float, float]:
    if len(values) < 2:
        return (float(values.max()) if len(values) else 0.0), 0.0
    part = np.partition(values, -2)[-2:]
    return float(part[1]), float(part[0])


def ranking_features(
    lex: Vector,
    dense: Vector | None,
    dense_raw: Vector | None,
    fused: Vector,
    order: npt.NDArray[np.int64],
    titles: Vector | None = None,
) -> dict[str, float]:
    """Score-based evidence for confidence: heights, gaps to the runner-up, agreement."""
    lex1, lex2 = _top_two(lex)
    f = {
        "lex_top": lex1,
        "lex_gap": lex1 - lex2,
        # How far the top stands out from this query's typical score (out-of-scope signal).
        "lex_z": (lex1 - float(lex.mean())) / (float(lex.std()) + 1e-9),
        "lex_of_best": float(lex[order[0]]) if len(order) else 0.0,
        "fused_gap": float(fused[order[0]] - fused[order[1]]) if len(order) > 1 else 0.0,
    }
    if dense is not None and dense_raw is not None:
        d1, d2 = _top_two(dense)
        f.update(
            dense_top=float(dense_raw.max()),
            dense_lift=d1,
            dense_gap=d1 - d2,
            dense_z=(d1 - float(dense.mean())) / (float(dense.std()) + 1e-9),
            fused_z=(float(fused[order[0]]) - float(fused.mean())) / (float(fused.std()) + 1e-9),
            dense_of_best=float(dense_raw[order[0]]),
            agree=float(int(np.argmax(lex)) == int(np.argmax(dense))),
        )
    if titles is not None and len(order):
        # Does the question name the top service? Titles are short service names.
        f.update(
            title_of_best=float(titles[order[0]]),
            title_agree=float(int(np.argmax(titles)) == int(order[0])),
        )
    return f


@dataclass(frozen=True, slots=True)
class Calibration:
    """Logistic model of "the top document answers the question" on ranking features.

    The probability ``p`` is then mapped piecewise-linearly so that ``p_star`` lands on 0.5,
    the policy's default threshold: ``p_star`` is where answers measured at least 95 % right
    on the data the model was fitted on, so "confidence ≥ 0.5" means that, and the ordering
    (precision rising with the threshold) is kept.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    p_star: float

    def probability(self, values: dict[str, float]) -> float:
        z = self.intercept + sum(
            c * (values.get(f, 0.0) - m) / s
            for f, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        )
        return float(1.0 / (1.0 + np.exp(-z)))

    def confidence(self, values: dict[str, float]) -> float:
        p = self.probability(values)
        if p < self.p_star:
            return 0.5 * p / self.p_star
        return 0.5 + 0.5 * (p - self.p_star) / max(1.0 - self.p_star, 1e-9)


# Fitted with agents.evaluate.fit_calibration; data and figures in agents/RETRIEVAL.md.
DENSE_CALIBRATION = Calibration(
    features=("dense_top", "fused_gap", "title_agree", "title_of_best"),
    mean=(0.83404, 0.02789, 0.2807, 0.80292),
    scale=(0.04077, 0.03649, 0.44934, 0.04568),
    coef=(1.6837, 0.7743, 0.5168, 0.8895),
    intercept=-2.0829,
    p_star=0.5622,
)
LEXICAL_CALIBRATION = Calibration(
    features=("lex_top", "lex_gap"),
    mean=(0.19833, 0.05071),
    scale=(0.10443, 0.0761),
    coef=(0.9913, 0.8469),
    intercept=-1.6221,
    p_star=0.8582,
)


def confidence_from(features: dict[str, float]) -> float:
    """Confidence that the top document answers the question, in [0, 1]."""
    model = DENSE_CALIBRATION if "dense_top" in features else LEXICAL_CALIBRATION
    return model.confidence(features)
