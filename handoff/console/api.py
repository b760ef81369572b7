"""The agent console: a JSON API for tickets, live ticket events, and the console page."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from channels.web.hub import Hub
from handoff.queues import Queue
from handoff.tickets import TicketClosed, TicketDetail, TicketNotFound, TicketService, TicketSummary

STATIC = Path(__file__).parent / "static"
CONSOLE_TOPIC = "console"


class AgentReply(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=10_000)]


class ReplyAccepted(BaseModel):
    message_id: str
    # False when the reply is stored but could not be queued for delivery yet; it is
    # retried in the background.
    queued: bool


def console_router(
    *,
    tickets: TicketService,
    queues: tuple[Queue, ...],
    hub: Hub,
    current_user: Callable[..., Any],
) -> APIRouter:
    router = APIRouter(tags=["agent console"])
    User = Annotated[str, Depends(current_user)]

    @router.get("/console", include_in_schema=False)
    async def console_page(_user: User) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @router.get("/console/{asset}", include_in_schema=False)
    async def console_asset(asset: Literal["console.js", "console.css"]) -> FileResponse:
        return FileResponse(STATIC / asset)

    @router.get("/api/queues", response_model=list[Queue])
    async def list_queues(_user: User) -> tuple[Queue, ...]:
        return queues

    @router.get("/api/tickets", response_model=list[TicketSummary])
    async def list_tickets(
        _user: User,
        status_: Annotated[Literal["open", "resolved", "all"], Query(alias="status")] = "open",
        queue: Annotated[list[str] | None, Query()] = None,
    ) -> list[TicketSummary]:
        return await tickets.list(status=None if status_ == "all" else status_, queues=queue)

    @router.get("/api/tickets/events", response_class=EventSourceResponse)
    async def ticket_events(_user: User, request: Request) -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, Any]]:
            async with hub.listen(CONSOLE_TOPIC) as q:
                yield {"event": "ready", "data": "{}", "retry": 1000}
                while True:
                    try:
                        payload = await asyncio.wait_for(q.get(), timeout=15)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        continue
                    yield {"event": "ticket", "data": json.dumps(payload, ensure_ascii=False)}

        return EventSourceResponse(stream(), ping=15)

    @router.get("/api/tickets/{ticket_id}", response_model=TicketDetail)
    async def get_ticket(ticket_id: int, _user: User) -> TicketDetail:
        try:
            return await tickets.get(ticket_id)
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such ticket.") from None

    @router.post(
        "/api/tickets/{ticket_id}/reply",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ReplyAccepted,
    )
    async def reply(ticket_id: int, body: AgentReply, user: User) -> ReplyAccepted:
        text = body.text.strip()
        if not text:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The reply is empty.")
        try:
            message_id, queued = await tickets.reply(ticket_id, text, author=user)
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such ticket.") from None
        except TicketClosed:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "The ticket is resolved; reopen it to reply."
            ) from None
        return ReplyAccepted(message_id=message_id, queued=queued)

    @router.post("/api/tickets/{ticket_id}/resolve", response_model=TicketDetail)
    async def resolve(ticket_id: int, user: User) -> TicketDetail:
        try:
            return await tickets.resolve(ticket_id, by=user)
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such ticket.") from None

    return router
