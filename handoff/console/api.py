"""The agent console: a JSON API for tickets, live ticket events, and the console page.

Every ticket route needs a signed-in staff account (``handoff.auth``) and shows or changes
only tickets of the caller's queues: 403 for another queue's ticket.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from channels.web.hub import Hub
from handoff.queues import Queue
from handoff.staff import StaffUser, can_see, visible_queues
from handoff.tickets import (
    TicketClosed,
    TicketDetail,
    TicketForbidden,
    TicketNotFound,
    TicketService,
    TicketSummary,
)

STATIC = Path(__file__).parent / "static"
CONSOLE_TOPIC = "console"
NOT_FOUND = "No such ticket."
FORBIDDEN = "This ticket is in a queue you do not work in."
# The console page holds no data itself; these keep it out of frames and caches.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


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
    current_user: Callable[..., Awaitable[StaffUser]],
    still_signed_in: Callable[[Request], Awaitable[StaffUser | None]],
) -> APIRouter:
    """``current_user``: the dependency (401, 403); ``still_signed_in``: a check that does
    not count as activity, for long-lived streams."""
    router = APIRouter(tags=["agent console"])
    User = Annotated[StaffUser, Depends(current_user)]

    def allowed(user: StaffUser) -> list[str] | None:
        """The queues whose tickets ``user`` may see (None: all)."""
        return None if user.is_admin else [q for q in user.queues if can_see(user, q)]

    @router.get("/console", include_in_schema=False)
    async def console_page() -> FileResponse:
        # Open to all: signed out, the page shows its sign-in form.
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @router.get("/console/{asset}", include_in_schema=False)
    async def console_asset(asset: Literal["console.js", "console.css"]) -> FileResponse:
        return FileResponse(STATIC / asset)

    @router.get("/api/queues", response_model=list[Queue])
    async def list_queues(user: User) -> tuple[Queue, ...]:
        """The queues the caller works in (admins: all)."""
        return visible_queues(user, queues)

    @router.get("/api/tickets", response_model=list[TicketSummary])
    async def list_tickets(
        user: User,
        status_: Annotated[Literal["open", "resolved", "all"], Query(alias="status")] = "open",
        queue: Annotated[list[str] | None, Query()] = None,
    ) -> list[TicketSummary]:
        """Tickets of the caller's queues (``queue``: only these of them)."""
        shown = allowed(user)
        if queue is not None:
            shown = [q for q in queue if shown is None or q in shown]
        return await tickets.list(status=None if status_ == "all" else status_, queues=shown)

    @router.get("/api/tickets/events", response_class=EventSourceResponse)
    async def ticket_events(user: User, request: Request) -> EventSourceResponse:
        """Server-sent events: ``ready``, then a ``ticket`` event per change in the caller's
        queues. The stream ends when the session does."""

        async def stream() -> AsyncIterator[dict[str, Any]]:
            viewer = user
            async with hub.listen(CONSOLE_TOPIC) as q:
                yield {"event": "ready", "data": "{}", "retry": 1000}
                while True:
                    try:
                        payload = await asyncio.wait_for(q.get(), timeout=15)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        # Signed out, expired or disabled meanwhile: the stream ends.
                        if (fresh := await still_signed_in(request)) is None:
                            return
                        viewer = fresh
                        continue
                    if not can_see(viewer, str(payload.get("queue", ""))):
                        continue
                    yield {"event": "ticket", "data": json.dumps(payload, ensure_ascii=False)}

        return EventSourceResponse(stream(), ping=15)

    @router.get("/api/tickets/{ticket_id}", response_model=TicketDetail)
    async def get_ticket(ticket_id: int, user: User) -> TicketDetail:
        try:
            return await tickets.get(ticket_id, allowed=allowed(user))
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
        except TicketForbidden:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN) from None

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
            message_id, queued = await tickets.reply(
                ticket_id, text, author=user.username, allowed=allowed(user)
            )
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
        except TicketForbidden:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN) from None
        except TicketClosed:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "The ticket is resolved; reopen it to reply."
            ) from None
        return ReplyAccepted(message_id=message_id, queued=queued)

    @router.post("/api/tickets/{ticket_id}/resolve", response_model=TicketDetail)
    async def resolve(ticket_id: int, user: User) -> TicketDetail:
        try:
            return await tickets.resolve(ticket_id, by=user.username, allowed=allowed(user))
        except TicketNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
        except TicketForbidden:
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN) from None

    return router
