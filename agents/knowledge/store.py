"""The knowledge base in the database: documents with all their language versions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Document
from router.events import utcnow
from router.tables import KbDocumentRow

KB = KbDocumentRow.__table__  # type: ignore[attr-defined]


def content_hash(doc: Document) -> str:
    canonical = json.dumps(
        doc.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
                await conn.execute(
                    KB.insert().values(
                        id=doc.id,
                        source=doc.source,
                        url=doc.url,
                        departments=list(doc.departments),
                        title=doc.title,
                        text=doc.text,
                        content_hash=h,
                        updated_at=now,
                    )
                )
        return added, changed

    async def all(self) -> list[Document]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    KB.c.id, KB.c.url, KB.c.departments, KB.c.title, KB.c.text, KB.c.source
                ).order_by(KB.c.id)
            )
            return [Document.model_validate(dict(r._mapping)) for r in rows]

    async def get(self, doc_id: str) -> Document | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        KB.c.id, KB.c.url, KB.c.departments, KB.c.title, KB.c.text, KB.c.source
                    ).where(KB.c.id == doc_id)
                )
            ).one_or_none()
        return Document.model_validate(dict(row._mapping)) if row else None


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
