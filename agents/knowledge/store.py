"""The knowledge base in the database: documents with all their language versions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agents.base import Document
from agents.passages import vector_keys
from router.events import utcnow
from router.tables import KbDocumentOriginRow, KbDocumentRow, KbVectorRow

KB = KbDocumentRow.__table__  # type: ignore[attr-defined]

ORIGIN = KbDocumentOriginRow.__table__  # type: ignore[attr-defined]
VECTORS = KbVectorRow.__table__  # type: ignore[attr-defined]
# Rows per IN (...) clause: well under every database's bound-parameter limit.
_CHUNK = 500
# The columns that make a ``Document``.
_DOC_FIELDS = ("id", "url", "departments", "title", "text", "source")
_DOC_COLUMNS = tuple(KB.c[name] for name in _DOC_FIELDS)


@dataclass(frozen=True, slots=True)
class KbEntry:
    """A stored document with its bookkeeping (for listings)."""

    doc: Document
    origin: str | None
    content_hash: str
    updated_at: datetime


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def content_hash(doc: Document) -> str:
    canonical = json.dumps(
        doc.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _insert(conn: AsyncConnection, doc: Document, digest: str, now: datetime) -> None:
    await conn.execute(
        KB.insert().values(
            id=doc.id,
            source=doc.source,
            url=doc.url,
            departments=list(doc.departments),
            title=doc.title,
            text=doc.text,
            content_hash=digest,
            updated_at=now,
        )
    )


class KnowledgeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(KB))).scalar_one())

    async def upsert(self, docs: Iterable[Document]) -> tuple[int, int]:
        """Add new and replace changed documents; returns (added, changed)."""
        incoming = {d.id: d for d in docs}
        async with self.engine.begin() as conn:
            known: dict[str, str] = dict(
                (await conn.execute(select(KB.c.id, KB.c.content_hash))).all()
            )
            added = changed = 0
            now = utcnow()
            for doc in incoming.values():
                h = content_hash(doc)
                if known.get(doc.id) == h:
                    continue
                if doc.id in known:
                    changed += 1
                    await conn.execute(delete(KB).where(KB.c.id == doc.id))
                else:
                    added += 1
                await _insert(conn, doc, h, now)
        return added, changed

    async def catalogue(self) -> dict[str, tuple[str, str | None]]:
        """Every stored document id → (content hash, origin or None)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(KB.c.id, KB.c.content_hash, ORIGIN.c.origin).select_from(
                    KB.outerjoin(ORIGIN, ORIGIN.c.doc_id == KB.c.id)
                )
            )
            return {r.id: (r.content_hash, r.origin) for r in rows}

    async def apply(
        self,
        origin: str,
        *,
        put: Sequence[Document] = (),
        keep: Sequence[str] = (),
        remove: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> frozenset[str]:
        """One transaction: write ``put`` (new or changed), delete ``remove``, and record
        ``origin`` for the written and the kept (unchanged) documents.

        ``progress`` gets the number of documents written so far after each one. Returns the
        vector keys that only the replaced and removed versions had: their vectors are
        dropped from the database here (``forget_vectors`` for a data folder's file).
        """
        now = utcnow()
        async with self.engine.begin() as conn:
            old = await self._documents(conn, [*(d.id for d in put), *remove])
            replaced = {d.id for d in old}
            stale = vector_keys(old) - vector_keys([d for d in put if d.id in replaced])
            for chunk in _chunks(sorted(stale)):
                await conn.execute(delete(VECTORS).where(VECTORS.c.key.in_(chunk)))
            await self._delete(conn, list(remove))
            for n, doc in enumerate(put, 1):
                await conn.execute(delete(KB).where(KB.c.id == doc.id))
                await _insert(conn, doc, content_hash(doc), now)
                if progress is not None:
                    progress(n)
            owned = list(dict.fromkeys([*(d.id for d in put), *keep]))
            for chunk in _chunks(owned):
                await conn.execute(delete(ORIGIN).where(ORIGIN.c.doc_id.in_(chunk)))
                await conn.execute(
                    ORIGIN.insert(), [{"doc_id": i, "origin": origin} for i in chunk]
                )
        return frozenset(stale)

    @staticmethod
    async def _documents(conn: AsyncConnection, ids: list[str]) -> list[Document]:
        """The stored documents of ``ids`` (those that exist)."""
        docs = []
        for chunk in _chunks(ids):
            rows = await conn.execute(select(*_DOC_COLUMNS).where(KB.c.id.in_(chunk)))
            docs += [Document.model_validate(dict(r._mapping)) for r in rows]
        return docs

    @staticmethod
    async def _delete(conn: AsyncConnection, ids: list[str]) -> None:
        for chunk in _chunks(ids):
            await conn.execute(delete(KB).where(KB.c.id.in_(chunk)))
            await conn.execute(delete(ORIGIN).where(ORIGIN.c.doc_id.in_(chunk)))

    async def entries(self) -> list[KbEntry]:
        """All documents with their origin and last change, by id."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    *_DOC_COLUMNS,
                    KB.c.content_hash,
                    KB.c.updated_at,
                    ORIGIN.c.origin,
                )
                .select_from(KB.outerjoin(ORIGIN, ORIGIN.c.doc_id == KB.c.id))
                .order_by(KB.c.id)
            )
            return [
                KbEntry(
                    doc=Document.model_validate({k: r._mapping[k] for k in _DOC_FIELDS}),
                    origin=r.origin,
                    content_hash=r.content_hash,
                    updated_at=r.updated_at,
                )
                for r in rows
            ]

    async def all(self) -> list[Document]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_DOC_COLUMNS).order_by(KB.c.id))
            return [Document.model_validate(dict(r._mapping)) for r in rows]

    async def get(self, doc_id: str) -> Document | None:
        async with self.engine.connect() as conn:
            found = await self._documents(conn, [doc_id])
        return found[0] if found else None


def read_docs_jsonl(lines: Iterable[str]) -> list[Document]:
    """Documents from the docs JSONL format (one JSON object a line; blank lines skipped)."""
    docs = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                docs.append(Document.model_validate_json(line))
            except ValueError as e:
                raise ValueError(f"line {n}: not a document: {e}") from e
    return docs
