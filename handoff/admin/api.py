"""Admin API and page: the handoff thresholds and rules, their change history.

Admins only: a signed-out caller gets 401, an agent 403; a change needs the CSRF token
(``handoff.auth``). A change names the version it was based on (``version``) and gets 409
when someone changed the thresholds in the meantime. Every change is recorded with who,
when, the old and the new setting, and reaches the running router workers within moments
(``handoff.policy_store``).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from handoff.auth import error_response
from handoff.console.api import PAGE_HEADERS
from handoff.policy_store import HistoryEntry, PolicyStore, StaleVersion
from handoff.staff import StaffUser
from handoff.thresholds import MAX_NOTE_CHARS, InvalidThresholds, Thresholds, ThresholdState

STATIC = Path(__file__).parent / "static"
ADMINS_ONLY = "Only admins may see and change the handoff thresholds."


class ThresholdsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        None,
        description="The version this change is based on (409 when the thresholds have "
        "changed since); leave out to change whatever is current",
    )
    default: float = Field(description="Minimum confidence for an automatic answer, 0–1")
    queues: dict[str, float] = Field(
        description="Thresholds of the queues that do not use the default (replaces all)"
    )
    always_handoff: list[str] | None = Field(
        None, description="Queues where people always answer (left out: unchanged)"
    )
    note: str | None = Field(None, description=f"Why (at most {MAX_NOTE_CHARS} characters)")


class ThresholdsSaved(ThresholdState):
    changed: bool = Field(description="False when the setting was already so (no new version)")
    live: bool = Field(
        description="The running workers get it at once (false: NATS is unreachable; they "
        "read it from the database at their next start)"
    )


def admin_router(
    *,
    store: PolicyStore,
    current_user: Callable[..., Awaitable[StaffUser]],
) -> APIRouter:
    """``current_user``: the staff dependency (401 signed out, 403 without a CSRF token).

    The page takes the queues and their names from the console's ``GET /api/queues``.
    """
    router = APIRouter(tags=["admin"])

    async def current_admin(user: Annotated[StaffUser, Depends(current_user)]) -> StaffUser:
        if not user.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, ADMINS_ONLY)
        return user

    Admin = Annotated[StaffUser, Depends(current_admin)]
    refused = {
        **error_response(401, "Not signed in."),
        **error_response(403, ADMINS_ONLY + " (Or: no valid CSRF token on a change.)"),
    }

    @router.get("/admin", include_in_schema=False)
    async def admin_page() -> FileResponse:
        # Open to all: the page holds no data; signed out it says where to sign in.
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @router.get("/admin/{asset}", include_in_schema=False)
    async def admin_asset(asset: Literal["admin.js", "admin.css"]) -> FileResponse:
        return FileResponse(STATIC / asset)

    @router.get("/api/admin/thresholds", response_model=ThresholdState, responses=refused)
    async def get_thresholds(user: Admin, response: Response) -> ThresholdState:
        """The current thresholds and rules, with their version and who set them."""
        response.headers["Cache-Control"] = "no-store"
        return await store.current()

    @router.put(
        "/api/admin/thresholds",
        response_model=ThresholdsSaved,
        responses={
            **refused,
            **error_response(409, "The thresholds changed since the given version."),
            **error_response(422, "A threshold outside 0–1, or an unknown queue."),
        },
    )
    async def put_thresholds(
        body: ThresholdsChange, user: Admin, response: Response
    ) -> ThresholdsSaved:
        """Set the default and per-queue thresholds and the always-to-a-person queues.

        The queues are {queue: threshold}; a queue left out uses the default. 1.0 means the
        AI never answers on its own in that queue.
        """

        def change(current: Thresholds) -> Thresholds:
            return Thresholds(
                default=body.default,
                queues=body.queues,
                always_handoff=current.always_handoff
                if body.always_handoff is None
                else tuple(body.always_handoff),
            )

        try:
            saved = await store.save(
                change, by=user.username, note=body.note, based_on=body.version
            )
        except InvalidThresholds as e:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [p.model_dump(mode="json") for p in e.problems],
            ) from None
        except StaleVersion as e:
            raise HTTPException(status.HTTP_409_CONFLICT, str(e).capitalize() + ".") from None
        response.headers["Cache-Control"] = "no-store"
        return ThresholdsSaved(**saved.state.model_dump(), changed=saved.changed, live=saved.live)

    @router.get(
        "/api/admin/thresholds/history", response_model=list[HistoryEntry], responses=refused
    )
    async def thresholds_history(
        user: Admin,
        response: Response,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[HistoryEntry]:
        """The changes, newest first: version, who, when, note, old and new, what changed."""
        response.headers["Cache-Control"] = "no-store"
        return await store.history(limit)

    return router
