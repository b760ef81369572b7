"""Health, metrics and the public knowledge-base pages that answers link to."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.knowledge.store import KnowledgeStore
from router.metrics import Metrics

log = logging.getLogger(__name__)

_LANG_NAMES = {"fi": "Suomeksi", "sv": "På svenska", "en": "In English"}


def ops_router(
    *,
    engine: AsyncEngine,
    nats_connected: Callable[[], bool],
    metrics: Metrics,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> APIRouter:
    """``before_scrape``: brings gauges read from the database up to date for /metrics."""
    router = APIRouter(tags=["operations"])

    async def check(probe: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(probe(), timeout=2)
        except Exception as e:
            return f"error: {type(e).__name__}"
        return "ok"

    async def db_probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def nats_probe() -> None:
        if not nats_connected():
            raise ConnectionError("NATS not connected")

    @router.get("/livez")
    async def livez() -> JSONResponse:
        """The process answers (for liveness probes: never depends on NATS or the database,
        so an outage of those does not restart every pod)."""
        return JSONResponse({"status": "ok"})

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        nats, database = await asyncio.gather(check(nats_probe), check(db_probe))
        ok = nats == "ok" and database == "ok"
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "nats": nats, "database": database},
            status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @router.get("/metrics")
    async def prometheus() -> Response:
        if before_scrape is not None:
            try:
                await asyncio.wait_for(before_scrape(), timeout=5)
            except Exception:  # the counters are still worth a scrape
                log.warning("gauges not refreshed for /metrics", exc_info=True)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def kb_router(*, engine: AsyncEngine) -> APIRouter:
    router = APIRouter(tags=["knowledge base"])
    kb = KnowledgeStore(engine)

    @router.get("/kb/{doc_id}", response_class=HTMLResponse)
    async def document_page(
        doc_id: str, lang: Annotated[Literal["fi", "sv", "en"], Query()] = "fi"
    ) -> HTMLResponse:
        doc = await kb.get(doc_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such document.")
        shown = lang if lang in doc.text else next(iter(doc.text), lang)
        title = html.escape(doc.title_in(shown))
        paragraphs = "".join(
            f"<p>{html.escape(p)}</p>" for p in doc.text.get(shown, "").split("\n") if p.strip()
        )
        others = "".join(
            f'<li><a href="/kb/{html.escape(doc.id)}?lang={code}" lang="{code}" '
            f'hreflang="{code}">{_LANG_NAMES.get(code, code)}</a></li>'
            for code in doc.text
            if code != shown and code in _LANG_NAMES
        )
        source = f"<p><small>{html.escape(doc.source)}</small></p>" if doc.source else ""
        original = (
            f'<p><a href="{html.escape(doc.url)}">{html.escape(doc.url)}</a></p>' if doc.url else ""
        )
        page = f"""<!doctype html>
<html lang="{shown}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/chat.css"></head>
<body><main class="kb-doc"><h1>{title}</h1>{paragraphs}{original}
{f'<nav aria-label="Language"><ul>{others}</ul></nav>' if others else ""}{source}
</main></body></html>"""
        return HTMLResponse(page)

    return router
