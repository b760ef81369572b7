"""The agent console: a JSON API for tickets, live ticket events, and the console page.

Every ticket route needs a signed-in staff account (``handoff.auth``) and shows or changes
only tickets of the caller's queues: 403 for another queue's ticket. An action that does not
fit the ticket's state is refused with 409 and the reason (``handoff.transitions``).
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from channels.web.hub import Hub
from handoff.auth import error_response
from handoff.queues import Queue
from handoff.staff import StaffUser, allowed_queues, can_see, visible_queues
from handoff.tickets import (
    TicketConflict,
    TicketDetail,
    TicketForbidden,
    TicketNotFound,
    TicketService,
    TicketSummary,
    UnknownQueue,
)

STATIC = Path(__file__).parent / "static"
CONSOLE_TOPIC = "console"
NOT_FOUND = "No such ticket."
FORBIDDEN = "This ticket is in a queue you do not work in."
NOT_YOUR_QUEUE = "You do not work in the queue {queue}: transfer to one of your own queues."
# The console page holds no data itself; these keep it out of frames and caches.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


Text = Annotated[str, Field(min_length=1, max_length=10_000)]
StatusFilter = Literal["active", "open", "claimed", "waiting", "resolved", "all"]


class AgentReply(BaseModel):
    text: Text


class ReplyAccepted(BaseModel):
    message_id: str
    # False when the reply is stored but could not be queued for delivery yet (its
    # delivery status stays "pending").
    queued: bool


class NoteIn(BaseModel):
    text: Text


class TransferIn(BaseModel):
    queue: Annotated[str, Field(min_length=1, max_length=64)]
    note: Text = Field(description="Why: for the people of the new queue")


class OverdueCount(BaseModel):
    total: int
    queues: dict[str, int]


ERRORS = {
    **error_response(401, "Not signed in."),
    **error_response(403, FORBIDDEN + " (Or: no valid CSRF token.)"),
    **error_response(404, NOT_FOUND),
}
CHANGE_ERRORS = {**ERRORS, **error_response(409, "Not possible in the ticket's state (why).")}


def _clean(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"The {what} is empty.")
    return text


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The ticket service's refusals as HTTP answers."""
    try:
        yield
    except TicketNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
    except TicketForbidden:
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN) from None
    except TicketConflict as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None


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

    @router.get("/console", include_in_schema=False)
    async def console_page() -> FileResponse:
        # Open to all: signed out, the page shows its sign-in form.
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @router.get("/console/{asset}", include_in_schema=False)
    async def console_asset(asset: Literal["console.js", "console.css"]) -> FileResponse:
        return FileResponse(STATIC / asset)

    @router.get("/api/queues", response_model=list[Queue])
    async def list_queues(user: User) -> tuple[Queue, ...]:
        """The queues the caller works in (admins: all), with their hours and targets."""
        return visible_queues(user, queues)

    @router.get("/api/tickets", response_model=list[TicketSummary], responses=ERRORS)
    async def list_tickets(
        user: User,
        status_: Annotated[StatusFilter, Query(alias="status")] = "active",
        queue: Annotated[list[str] | None, Query()] = None,
        urgent: Annotated[bool, Query(description="Only urgent tickets")] = False,
        overdue: Annotated[bool, Query(description="Only overdue tickets")] = False,
        mine: Annotated[bool, Query(description="Only tickets the caller owns")] = False,
        q: Annotated[str | None, Query(max_length=200, description="Text to look for")] = None,
    ) -> list[TicketSummary]:
        """Tickets of the caller's queues (``queue``: only these of them); ``status``
        "active": everything not resolved. Urgent first, then oldest first."""
        shown = allowed_queues(user)
        if queue is not None:
            shown = [name for name in queue if shown is None or name in shown]
        return await tickets.list(
            status=status_,
            queues=shown,
            urgent=urgent,
            overdue=overdue,
            owner=user.username if mine else None,
            search=q,
        )

    @router.get("/api/tickets/overdue", response_model=OverdueCount, responses=ERRORS)
    async def overdue_count(user: User) -> OverdueCount:
        """How many tickets of the caller's queues are past their first-response target."""
        counts = await tickets.overdue_counts()
        mine = {q: n for q, n in counts.items() if can_see(user, q)}
        return OverdueCount(total=sum(mine.values()), queues=mine)

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

    @router.get("/api/tickets/{ticket_id}", response_model=TicketDetail, responses=ERRORS)
    async def get_ticket(ticket_id: int, user: User) -> TicketDetail:
        with _refusals():
            return await tickets.get(ticket_id, allowed=allowed_queues(user))

    @router.post(
        "/api/tickets/{ticket_id}/claim", response_model=TicketDetail, responses=CHANGE_ERRORS
    )
    async def claim(ticket_id: int, user: User) -> TicketDetail:
        """Take the ticket: the caller owns it (an admin may take it over from its owner)."""
        with _refusals():
            return await tickets.claim(
                ticket_id, user.username, admin=user.is_admin, allowed=allowed_queues(user)
            )

    @router.post(
        "/api/tickets/{ticket_id}/reply",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ReplyAccepted,
        responses=CHANGE_ERRORS,
    )
    async def reply(ticket_id: int, body: AgentReply, user: User) -> ReplyAccepted:
        """Answer the resident on their channel; the ticket then waits for the resident."""
        text = _clean(body.text, "reply")
        with _refusals():
            message_id, queued = await tickets.reply(
                ticket_id,
                text,
                author=user.username,
                admin=user.is_admin,
                allowed=allowed_queues(user),
            )
        return ReplyAccepted(message_id=message_id, queued=queued)

    @router.post(
        "/api/tickets/{ticket_id}/note", response_model=TicketDetail, responses=CHANGE_ERRORS
    )
    async def note(ticket_id: int, body: NoteIn, user: User) -> TicketDetail:
        """An internal note for colleagues: shown in the timeline, never to the resident."""
        text = _clean(body.text, "note")
        with _refusals():
            return await tickets.note(ticket_id, text, user.username, allowed=allowed_queues(user))

    @router.post(
        "/api/tickets/{ticket_id}/transfer",
        response_model=TicketDetail,
        responses={
            **CHANGE_ERRORS,
            **error_response(403, NOT_YOUR_QUEUE.format(queue="…") + " (Or as on reading.)"),
            **error_response(422, "No such queue, or no note."),
        },
    )
    async def transfer(ticket_id: int, body: TransferIn, user: User) -> TicketDetail:
        """Move the ticket to another queue (one the caller works in; admins: any) with a
        note saying why; there it is open and unclaimed."""
        text = _clean(body.note, "note")
        with _refusals():
            # Reading first: a ticket of another queue is 403 whatever the target.
            await tickets.get(ticket_id, allowed=allowed_queues(user))
        if body.queue not in {q.name for q in queues}:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"There is no queue {body.queue!r}."
            )
        if not can_see(user, body.queue):
            raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOUR_QUEUE.format(queue=body.queue))
        with _refusals():
            try:
                return await tickets.transfer(
                    ticket_id,
                    body.queue,
                    text,
                    user.username,
                    admin=user.is_admin,
                    allowed=allowed_queues(user),
                )
            except UnknownQueue:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"There is no queue {body.queue!r}."
                ) from None

    @router.post(
        "/api/tickets/{ticket_id}/resolve", response_model=TicketDetail, responses=CHANGE_ERRORS
    )
    async def resolve(ticket_id: int, user: User) -> TicketDetail:
        """Close the case; the conversation goes back to the AI for new questions."""
        with _refusals():
            return await tickets.resolve(
                ticket_id, by=user.username, admin=user.is_admin, allowed=allowed_queues(user)
            )

    @router.post(
        "/api/tickets/{ticket_id}/reopen", response_model=TicketDetail, responses=CHANGE_ERRORS
    )
    async def reopen(ticket_id: int, user: User) -> TicketDetail:
        """Open a resolved case again; a person owns the conversation again."""
        with _refusals():
            return await tickets.reopen(ticket_id, user.username, allowed=allowed_queues(user))

    return router
