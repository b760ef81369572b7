"""Admin API and page: the handoff thresholds and rules, their change history.

Admins only: a signed-out caller gets 401, an agent 403; a change needs the CSRF token
(``handoff.auth``). A change names the version it was based on (``version``) and gets 409
when someone changed the thresholds in the meantime. Every change is recorded with who,
when, the old and the new setting, and reaches the running router workers within moments
(``handoff.policy_store``).

The what-if simulator (``GET /api/admin/whatif``) shows what candidate thresholds would have
done to the messages of the last days, before anyone saves them; the analytics
(``GET /api/admin/analytics``, the ``/admin/analytics`` page) show volume, the AI's
resolution rate, handoff reasons, the time to a person's first reply and the questions the
knowledge base had no good answer for (also as CSV).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from handoff import analytics, gaps, whatif
from handoff.admin.insights import Facts
from handoff.auth import error_response
from handoff.console.api import PAGE_HEADERS
from handoff.policy_store import HistoryEntry, PolicyStore, StaleVersion
from handoff.staff import StaffUser
from handoff.thresholds import (
    MAX_NOTE_CHARS,
    InvalidThresholds,
    Problem,
    Thresholds,
    ThresholdState,
    checked,
)
from router.events import utcnow

STATIC = Path(__file__).parent / "static"
ADMINS_ONLY = "Only admins may see and change the handoff thresholds."
ASSETS = Literal["admin.js", "admin.css", "analytics.js", "charts.js", "whatif.js"]
SHOWN_GAPS = 50
Days = Annotated[
    int, Query(ge=1, le=analytics.ANALYTICS_DAYS, description="The last this many days")
]
EvalSource = Callable[[], Awaitable[list[whatif.Sample]]]


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


class WhatIf(BaseModel):
    days: int = Field(
        description="The period asked for; ``outcome.days``: the days with "
        "messages in it (from the first decision, if later), which tickets per day divide by"
    )
    since: datetime
    current: ThresholdState
    candidate: Thresholds = Field(description="The candidate, in name order")
    now: whatif.Outcome = Field(description="The current thresholds over the same messages")
    outcome: whatif.Outcome = Field(description="The candidate thresholds")
    queues: list[whatif.QueueOutcome] = Field(description="The candidate, per queue")
    queues_now: list[whatif.QueueOutcome] = Field(description="The current, per queue")
    curve: list[whatif.CurvePoint] = Field(description="The candidate as its default moves")
    eval_questions: int | None = Field(description="Questions of the evaluation set (None: none)")


class Analytics(BaseModel):
    days: int
    since: datetime
    until: datetime
    volume: analytics.Volume
    resolution: analytics.Resolution
    handoff_reasons: dict[str, int]
    first_response: analytics.FirstResponse
    labels: analytics.LabelFigures = Field(description="People's labels on those tickets")
    knowledge_gaps: list[gaps.GapSummary] = Field(
        description=f"The {SHOWN_GAPS} biggest groups (all of them: the CSV)"
    )
    knowledge_gap_questions: int


class ThresholdsSaved(ThresholdState):
    changed: bool = Field(description="False when the setting was already so (no new version)")
    live: bool = Field(
        description="The running workers get it at once (false: NATS is unreachable; they "
        "read it from the database at their next start)"
    )


def _candidate(request: Request, current: Thresholds, queues: list[str]) -> Thresholds:
    """Thresholds from ``?default=0.6&queue.health=0.8&always_handoff=social``: what the
    query leaves out is as now; ``queue.health=`` (no value): the default there;
    ``always_handoff=`` (no value): no such queues."""
    params = request.query_params
    found: list[Problem] = []

    def number(loc: list[str | int], raw: str) -> float:
        try:
            return float(raw.replace(",", "."))
        except ValueError:
            found.append(
                Problem(loc=loc, msg=f"{loc[-1]}: not a number", type="threshold_range", input=raw)
            )
            return 0.0

    default = number(["query", "default"], params["default"]) if "default" in params else None
    queues_ = dict(current.queues)
    for k, v in params.items():
        if k.startswith("queue."):
            name = k.removeprefix("queue.")
            if v.strip():
                queues_[name] = number(["query", "queues", name], v)
            else:  # ``queue.health=``: the queue uses the default
                queues_.pop(name, None)
    rules = [r for r in params.getlist("always_handoff") if r]
    candidate = Thresholds(
        default=current.default if default is None else default,
        queues=queues_,
        always_handoff=tuple(rules) if "always_handoff" in params else current.always_handoff,
    )
    try:
        if found:
            raise InvalidThresholds(found)
        return checked(candidate, queues)
    except InvalidThresholds as e:
        detail = [{**p.model_dump(mode="json"), "loc": ["query", *p.loc[1:]]} for p in e.problems]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None


def admin_router(
    *,
    store: PolicyStore,
    current_user: Callable[..., Awaitable[StaffUser]],
    facts: Facts | None = None,
    eval_samples: EvalSource | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """``current_user``: the staff dependency (401 signed out, 403 without a CSRF token);
    ``facts``: the decisions and tickets for the what-if and the analytics (None: those
    routes are left out); ``eval_samples``: an evaluation question set's outcomes, for a
    precision figure before people have labelled enough tickets.

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

    @router.get("/admin/analytics", include_in_schema=False)
    async def analytics_page() -> FileResponse:
        return FileResponse(STATIC / "analytics.html", headers=PAGE_HEADERS)

    @router.get("/admin/{asset}", include_in_schema=False)
    async def admin_asset(asset: ASSETS) -> FileResponse:
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

    if facts is None:
        return router

    @router.get(
        "/api/admin/whatif",
        response_model=WhatIf,
        responses={
            **refused,
            **error_response(422, "A threshold outside 0–1, or an unknown queue."),
        },
    )
    async def what_if(
        user: Admin,
        request: Request,
        response: Response,
        days: Days = 30,
        default: Annotated[
            float | None, Query(description="Candidate default threshold (left out: as now)")
        ] = None,
    ) -> WhatIf:
        """What candidate thresholds would have done to the messages of the last ``days``
        days: ``?default=0.6&queue.health=0.8`` (a queue left out: as now; ``queue.health=``:
        the default there; ``always_handoff=social``, repeatable, or ``always_handoff=`` for
        none: replaces the always-to-a-person queues).

        The share the AI would answer, the expected precision of its answers (from people's
        labels on tickets, or the evaluation set while there are too few; with the number of
        judged answers and whether that is enough), and the tickets per day per queue.
        """
        current = await store.current()
        candidate = _candidate(request, current.thresholds, store.queues)
        until = clock()
        since = until - timedelta(days=days)
        recorded = await facts.samples(since, store.base)
        evaluated = await eval_samples() if eval_samples is not None else None
        seen = whatif.observed_days(since, until, await facts.first_decision_at())
        response.headers["Cache-Control"] = "no-store"

        def replay() -> WhatIf:
            # Every message of the period, 2 + 2 + 21 times over (a second or more for a
            # busy month): off the event loop, as the knowledge-gap grouping.
            return WhatIf(
                days=days,
                since=since,
                current=current,
                candidate=candidate.normalized(),
                now=whatif.simulate(recorded, current.thresholds, days=seen, evaluated=evaluated),
                outcome=whatif.simulate(recorded, candidate, days=seen, evaluated=evaluated),
                queues=whatif.by_queue(recorded, candidate, store.queues, days=seen),
                queues_now=whatif.by_queue(recorded, current.thresholds, store.queues, days=seen),
                curve=whatif.curve(recorded, candidate, days=seen, evaluated=evaluated),
                eval_questions=None if evaluated is None else len(evaluated),
            )

        return await asyncio.to_thread(replay)

    @router.get("/api/admin/analytics", response_model=Analytics, responses=refused)
    async def get_analytics(user: Admin, response: Response, days: Days = 30) -> Analytics:
        """The figures of the last ``days`` days: messages by channel, language and queue;
        the AI resolution rate (answered by the AI with no handoff after it, of all the
        messages it triaged); handoff reasons; minutes to a person's first reply (median,
        90th percentile, per queue); and the knowledge gaps (questions handed off for low
        confidence or no answer, or asked to say more, grouped by similar wording)."""
        until = clock()
        since = until - timedelta(days=days)
        messages = await facts.messages(since)
        tickets = await facts.tickets(since)
        questions = gaps.gap_questions(messages)
        groups = await asyncio.to_thread(gaps.group, questions)
        response.headers["Cache-Control"] = "no-store"
        return Analytics(
            days=days,
            since=since,
            until=until,
            volume=analytics.volume(messages),
            resolution=analytics.resolution(messages),
            handoff_reasons=analytics.handoff_reasons(messages),
            first_response=analytics.first_response(tickets, store.queues),
            labels=analytics.label_figures(await facts.labels(since)),
            knowledge_gaps=[g.summary() for g in groups[:SHOWN_GAPS]],
            knowledge_gap_questions=len(questions),
        )

    @router.get(
        "/api/admin/knowledge-gaps.csv",
        response_class=Response,
        responses={**refused, 200: {"content": {"text/csv": {}}}},
    )
    async def knowledge_gaps_csv(user: Admin, days: Days = 30) -> Response:
        """Every knowledge-gap question of the last ``days`` days, one row each, group by
        group (UTF-8, a header row)."""
        until = clock()
        questions = gaps.gap_questions(await facts.messages(until - timedelta(days=days)))
        groups = await asyncio.to_thread(gaps.group, questions)
        name = f"knowledge-gaps-{until:%Y-%m-%d}-{days}d.csv"
        return Response(
            gaps.to_csv(groups),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    return router
