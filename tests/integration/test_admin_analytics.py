"""The what-if simulator and the analytics API on messages that went through the real
router (real nats-server, real SQLite and PostgreSQL), with a label given through the API."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from agents.base import Assessment, TriageRequest
from agents.evaluate import Question
from handoff.admin.api import ADMINS_ONLY, admin_router
from handoff.admin.insights import EVAL_QUESTIONS, EvalSamples, Facts
from handoff.auth import NOT_SIGNED_IN, StaffAuth, hash_password
from handoff.gaps import CSV_HEADER
from handoff.queues import DEFAULT_QUEUES
from router.app import Services, policy_store
from router.events import Address, Channel, MessageReceived
from router.web import create_web_app, staff_store
from tests.integration.harness import (
    LIBRARY,
    ScriptedAgent,
    count,
    eventually,
    library_answer,
    make_settings,
    rows,
    services,
    worker,
)
from tests.integration.staff_helpers import client, switch_to

LIBRARY_QUEUE = "culture-leisure"  # department P25
GENERAL = "general"
# text → (confidence, has an answer, language)
SCRIPT: dict[str, tuple[float, bool, str]] = {
    "Milloin kirjasto on auki?": (0.9, True, "fi"),
    "Voiko kirjastosta lainata ompelukoneen?": (0.4, True, "fi"),
    "Kan man låna en symaskin på biblioteket?": (0.45, True, "sv"),
    "Mistä saa koiraveromerkin tänä vuonna?": (0.1, False, "fi"),
    "Haluan puhua ihmisen kanssa kirjastosta": (0.9, True, "fi"),
}


def scripted() -> ScriptedAgent:
    async def behave(request: TriageRequest) -> Assessment:
        confidence, answers, lang = SCRIPT[request.text]
        a = library_answer(request)
        update: dict[str, Any] = {
            "confidence": confidence,
            "language": lang,
            "reply_language": lang,
        }
        if not answers:
            update |= {"answer": None, "sources": (), "department": None}
        return a.model_copy(update=update)

    return ScriptedAgent(behave)


async def ticket_of(svc: Services, text: str) -> int:
    (message,) = await rows(svc, "message", text=text)
    (decision,) = await rows(svc, "decision", message_id=message["id"])
    return int(decision["ticket_id"])


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path, nats_url: str, database_url: str
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """Every scripted question from its own resident through the router; staff accounts."""
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = staff_store(svc)
        await store.add("boss", hash_password("boss-pw-1"), "admin")
        await store.add("anna", hash_password("anna-pw-1"), "agent", [LIBRARY_QUEUE])
        async with worker(svc, scripted()):
            for n, text in enumerate(SCRIPT):
                await svc.publisher.publish(
                    MessageReceived(
                        channel=Channel.SMS,
                        provider_message_id=f"SM-analytics-{n}",
                        sender=Address(channel=Channel.SMS, value=f"+35840222{n:04d}"),
                        text=text,
                    )
                )

            async def decided() -> bool:
                return await count(svc, "decision") == len(SCRIPT)

            await eventually(decided, what="every decision")
        async with client(create_web_app(svc), address="192.0.2.12") as c:
            yield svc, c


async def test_whatif_replays_the_recorded_messages_under_candidate_thresholds(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with served(tmp_path, nats_url, database_url) as (svc, c):
        await switch_to(c, "anna")
        # The 0.4 draft about the sewing machine was right, says the agent of the queue.
        sewing = await ticket_of(svc, "Voiko kirjastosta lainata ompelukoneen?")
        r = await c.post(
            f"/api/tickets/{sewing}/label",
            json={"department_correct": True, "answer_correct": True},
        )
        assert r.status_code == 200, r.text

        await switch_to(c, "boss")
        r = await c.get("/api/admin/whatif", params={"days": 7})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        now = r.json()
        assert now["candidate"] == {"default": 0.5, "queues": {}, "always_handoff": []}
        assert now["outcome"] == now["now"]
        # One of five answered (the 0.9 library question); four went to people.
        assert (now["now"]["messages"], now["now"]["answered"], now["now"]["tickets"]) == (5, 1, 4)
        assert now["now"]["answered_share"] == 0.2
        # Per day over the days there were messages: all came today, not over 7 days.
        assert (now["now"]["days"], now["now"]["tickets_per_day"]) == (1, 4.0)
        library = next(q for q in now["queues"] if q["queue"] == LIBRARY_QUEUE)
        assert (library["messages"], library["answered"], library["tickets"]) == (4, 1, 3)
        assert now["now"]["precision"] == {
            "value": None,
            "source": "labels",
            "samples": 0,
            "enough_data": False,
        }
        assert now["eval_questions"] is None
        assert [p["default"] for p in now["curve"]][:2] == [0.0, 0.05]

        # A lower threshold for the library's queue: both unsure library drafts go out; the
        # labelled one is the only judged answer (not enough to trust).
        r = await c.get("/api/admin/whatif", params={"days": 7, f"queue.{LIBRARY_QUEUE}": "0.4"})
        assert r.status_code == 200, r.text
        lower = r.json()
        assert lower["candidate"]["queues"] == {LIBRARY_QUEUE: 0.4}
        assert (lower["outcome"]["answered"], lower["outcome"]["tickets"]) == (3, 2)
        assert lower["outcome"]["precision"] == {
            "value": 1.0,
            "source": "labels",
            "samples": 1,
            "enough_data": False,
        }
        library = next(q for q in lower["queues"] if q["queue"] == LIBRARY_QUEUE)
        assert (library["threshold"], library["answered"], library["tickets"]) == (0.4, 3, 1)
        assert lower["now"] == now["now"]

        # Always to a person there, and a default above every confidence.
        r = await c.get(
            "/api/admin/whatif", params={"default": "0.95", "always_handoff": LIBRARY_QUEUE}
        )
        assert r.status_code == 200, r.text
        assert r.json()["outcome"]["answered"] == 0
        assert r.json()["candidate"]["always_handoff"] == [LIBRARY_QUEUE]

        for bad in ({"default": "2"}, {"queue.nope": "0.5"}, {"queue.health": "lots"}):
            r = await c.get("/api/admin/whatif", params=bad)
            assert r.status_code == 422, bad
        r = await c.get("/api/admin/whatif", params={"queue.nope": "0.5"})
        assert r.json()["detail"][0]["loc"] == ["query", "queues", "nope"]

        # Saved thresholds are "now"; an empty queue value means "uses the default".
        saved = {"default": 0.5, "queues": {LIBRARY_QUEUE: 0.4}}
        assert (await c.put("/api/admin/thresholds", json=saved)).status_code == 200
        r = await c.get("/api/admin/whatif", params={f"queue.{LIBRARY_QUEUE}": ""})
        cleared = r.json()
        assert (cleared["current"]["version"], cleared["now"]["answered"]) == (1, 3)
        assert cleared["candidate"]["queues"] == {}
        assert cleared["outcome"]["answered"] == 1


async def test_analytics_figures_and_the_knowledge_gap_csv(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with served(tmp_path, nats_url, database_url) as (svc, c):
        await switch_to(c, "boss")
        sewing = await ticket_of(svc, "Voiko kirjastosta lainata ompelukoneen?")
        r = await c.post(f"/api/tickets/{sewing}/reply", json={"text": "Voi, varaa se netissä."})
        assert r.status_code == 202, r.text

        r = await c.post(
            f"/api/tickets/{sewing}/label",
            json={"department_correct": True, "answer_correct": None},
        )
        assert r.status_code == 200, r.text

        r = await c.get("/api/admin/analytics", params={"days": 30})
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["days"] == 30
        assert a["volume"]["messages"] == 5
        assert a["volume"]["by_channel"] == {"sms": 5}
        assert a["volume"]["by_language"] == {"fi": 4, "sv": 1}
        assert a["volume"]["by_queue"] == {LIBRARY_QUEUE: 4, GENERAL: 1}
        assert a["resolution"] == {"messages": 5, "answered": 1, "resolved": 1, "rate": 0.2}
        assert a["handoff_reasons"] == {
            "low_confidence": 2,
            "asked_for_human": 1,
            "no_answer": 1,
        }
        assert a["labels"] == {
            "labelled": 1,
            "department_judged": 1,
            "department_right": 1,
            "department_rate": 1.0,
            "answer_judged": 0,
            "answer_right": 0,
            "answer_rate": None,
        }
        fr = a["first_response"]
        assert (fr["overall"]["tickets"], fr["overall"]["answered"]) == (4, 1)
        assert fr["overall"]["median_minutes"] is not None
        assert fr["by_queue"][LIBRARY_QUEUE]["answered"] == 1
        assert list(fr["by_queue"])[: len(DEFAULT_QUEUES)] == [q.name for q in DEFAULT_QUEUES]
        # Knowledge gaps: the two unsure drafts and the unanswered dog-tax question.
        assert a["knowledge_gap_questions"] == 3
        examples = sorted((g["language"], g["example"]) for g in a["knowledge_gaps"])
        assert examples == [
            ("fi", "Mistä saa koiraveromerkin tänä vuonna?"),
            ("fi", "Voiko kirjastosta lainata ompelukoneen?"),
            ("sv", "Kan man låna en symaskin på biblioteket?"),
        ]

        r = await c.get("/api/admin/knowledge-gaps.csv", params={"days": 7})
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"].startswith('attachment; filename="knowledge-gaps-')
        table = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
        assert tuple(table[0]) == CSV_HEADER
        assert sorted(row[4] for row in table[1:]) == sorted(
            [
                "Kan man låna en symaskin på biblioteket?",
                "Mistä saa koiraveromerkin tänä vuonna?",
                "Voiko kirjastosta lainata ompelukoneen?",
            ]
        )
        assert {row[6] for row in table[1:]} == {"low_confidence", "no_answer"}


async def test_only_admins_see_the_whatif_and_the_analytics(tmp_path: Path, nats_url: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = staff_store(svc)
        await store.add("anna", hash_password("anna-pw-1"), "agent", [LIBRARY_QUEUE])
        paths = ("/api/admin/whatif", "/api/admin/analytics", "/api/admin/knowledge-gaps.csv")
        async with client(create_web_app(svc), address="192.0.2.12") as c:
            for path in paths:
                r = await c.get(path)
                assert (r.status_code, r.json()) == (401, {"detail": NOT_SIGNED_IN}), path
            page = await c.get("/admin/analytics")
            assert page.status_code == 200 and 'id="analytics-view"' in page.text
            assert (await c.get("/admin/analytics.js")).status_code == 200
            await switch_to(c, "anna")
            for path in paths:
                r = await c.get(path)
                assert (r.status_code, r.json()) == (403, {"detail": ADMINS_ONLY}), path


async def test_before_labels_exist_the_precision_comes_from_an_evaluation_set(
    tmp_path: Path, nats_url: str
) -> None:
    """The evaluation set runs once through ``agents.evaluate`` with the given agent."""
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        await staff_store(svc).add("boss", hash_password("boss-pw-1"), "admin")
        agent = scripted()
        closed: list[bool] = []
        agent.close = lambda: closed.append(True)  # type: ignore[attr-defined]
        questions = [
            Question(id=f"q{n}", text=text, expected_docs=(LIBRARY.doc_id,) if n % 3 else ())
            for n, text in enumerate(list(SCRIPT)[:3] * 4)
        ]

        async def build() -> ScriptedAgent:
            return agent

        thresholds = policy_store(svc)
        app = FastAPI()
        auth = StaffAuth(staff_store(svc), queues=DEFAULT_QUEUES, public_url=None)
        app.include_router(auth.router())
        app.include_router(
            admin_router(
                store=thresholds,
                current_user=auth.current_user,
                facts=Facts(svc.engine),
                eval_samples=EvalSamples(build, questions, thresholds.base),
            )
        )
        async with client(app, address="192.0.2.12") as c:
            await switch_to(c, "boss")
            r = await c.get("/api/admin/whatif", params={"default": "0.4"})
            assert r.status_code == 200, r.text
            body = r.json()
            # No messages yet; 12 questions, all three kinds answered at 0.4; every third
            # has no expected document, so its answer is wrong: 8 of 12 right.
            assert (body["outcome"]["messages"], body["eval_questions"]) == (0, 12)
            assert body["outcome"]["precision"] == {
                "value": 0.6667,
                "source": "eval",
                "samples": 12,
                "enough_data": True,
            }
            assert (await c.get("/api/admin/whatif")).status_code == 200
        # Run once, whatever the number of requests; then the agent's background work stops.
        assert agent.calls == 12
        assert closed == [True]


async def test_a_question_set_in_the_data_folder_feeds_the_running_apps_whatif(
    tmp_path: Path, nats_url: str
) -> None:
    """``whatif.questions.jsonl`` next to the database: the web app runs it once with a
    fresh agent over the system's knowledge base (here the benchmark agent, which answers
    everything from its one document)."""
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    settings = make_settings(tmp_path, nats_url, database_url, agent="noop")
    settings.data_dir.mkdir(parents=True)
    lines = [
        Question(id=f"q{n}", text=f"Kysymys numero {n}", expected_docs=("noop",) if n < 6 else ())
        for n in range(10)
    ]
    (settings.data_dir / EVAL_QUESTIONS).write_text(
        "".join(q.model_dump_json() + "\n" for q in lines), encoding="utf-8"
    )
    async with services(settings) as svc:
        await staff_store(svc).add("boss", hash_password("boss-pw-1"), "admin")
        async with client(create_web_app(svc), address="192.0.2.12") as c:
            await switch_to(c, "boss")
            r = await c.get("/api/admin/whatif")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["eval_questions"] == 10
            assert body["outcome"]["precision"] == {
                "value": 0.6,
                "source": "eval",
                "samples": 10,
                "enough_data": True,
            }
