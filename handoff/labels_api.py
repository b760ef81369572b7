"""``POST /api/tickets/{id}/label``: staff say whether the AI got a ticket's department and
answer right; ``GET /api/tickets/{id}/labels``: every label given, oldest first.

The same rule as reading the ticket: signed in, and the ticket's queue is one of the
caller's (admins: all); CSRF as on every POST (``handoff.auth``).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends

from handoff.auth import error_response
from handoff.console.api import ERRORS, FORBIDDEN, NOT_FOUND, _refusals
from handoff.labels import AiLabel, LabelInput, LabelStore
from handoff.staff import StaffUser, allowed_queues
from handoff.tickets import TicketService


def labels_router(
    *,
    tickets: TicketService,
    labels: LabelStore,
    current_user: Callable[..., Awaitable[StaffUser]],
) -> APIRouter:
    router = APIRouter(tags=["agent console"])
    User = Annotated[StaffUser, Depends(current_user)]

    async def may_see(ticket_id: int, user: StaffUser) -> None:
        # As the console reads a ticket: the same queues rule and refusals (404, 403).
        with _refusals():
            await tickets.get(ticket_id, allowed=allowed_queues(user))

    @router.post(
        "/api/tickets/{ticket_id}/label",
        response_model=AiLabel,
        responses=ERRORS,
    )
    async def label_ticket(ticket_id: int, body: LabelInput, user: User) -> AiLabel:
        """Whether the AI's department and answer were right (null: not judged). A later
        label, by anyone, replaces this one; every label is kept in the history."""
        await may_see(ticket_id, user)
        return await labels.save(ticket_id, body, by=user.username)

    @router.get(
        "/api/tickets/{ticket_id}/labels",
        response_model=list[AiLabel],
        responses={
            **error_response(401, "Not signed in."),
            **error_response(403, FORBIDDEN),
            **error_response(404, NOT_FOUND),
        },
    )
    async def label_history(ticket_id: int, user: User) -> list[AiLabel]:
        """Every label given to the ticket, oldest first (the last one is the ticket's)."""
        await may_see(ticket_id, user)
        return await labels.history(ticket_id)

    return router
