"""The whole path through a running ``neuvonta serve``: HTTP → JetStream → router → reply."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from router import phrases
from tests.e2e.conftest import RunningServer, start_server, stop_server

CASE = re.compile(r"NV-[0-9A-Z]{4}-[0-9A-Z]{4}")


def new_session(api: httpx.Client, language: str | None = None) -> str:
    r = api.post("/api/chat/sessions", json={"language": language} if language else None)
    assert r.status_code == 201, r.text
    return str(r.json()["session_id"])


def send(api: httpx.Client, sid: str, text: str, **extra: Any) -> str:
    r = api.post(f"/api/chat/sessions/{sid}/messages", json={"text": text, **extra})
    assert r.status_code == 202, r.text
    return str(r.json()["message_id"])


def wait_for(
    api: httpx.Client, sid: str, role: str, count: int = 1, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = api.get(f"/api/chat/sessions/{sid}/messages").json()
        if sum(m["role"] == role for m in messages) >= count:
            return messages
        time.sleep(0.1)
    raise AssertionError(f"no {role} message in time; conversation: {messages}")


def test_a_library_question_in_finnish_gets_an_ai_answer_with_a_source(
    api: httpx.Client,
) -> None:
    sid = new_session(api)
    mid = send(api, sid, "Mitä kirjastossa voi tehdä ja miten lainaan kirjoja?")
    messages = wait_for(api, sid, "ai")
    assert [m["role"] for m in messages] == ["resident", "ai"]
    assert messages[0]["id"] == mid
    answer = messages[1]
    # EU AI Act: the first AI message says an AI answers, in the resident's language.
    assert answer["text"].startswith(phrases.disclosure("fi"))
    assert answer["sources"], "an AI answer always names its source"
    source = answer["sources"][0]
    assert "kirjasto" in source["title"].lower()
    assert source["url"]
    page = api.get(source["url"])
    assert page.status_code == 200
    assert source["title"] in page.text


def test_asking_for_a_person_opens_a_ticket_and_the_agent_reply_reaches_the_chat(
    api: httpx.Client, staff: httpx.Client, server: RunningServer
) -> None:
    sid = new_session(api, "en")
    send(api, sid, "I want to talk to a person please.")
    messages = wait_for(api, sid, "system")
    notice = next(m for m in messages if m["role"] == "system")
    case = CASE.search(notice["text"])
    assert case, notice["text"]
    assert "person" in notice["text"]
    assert not any(m["role"] == "ai" for m in messages)

    tickets = staff.get("/api/tickets").json()
    ticket = next(t for t in tickets if t["case_number"] == case.group())
    assert ticket["reason"] == "asked_for_human"
    assert ticket["language"] == "en"
    # No topic in the message: the general queue, not a guess from the retrieval.
    assert ticket["queue"] == "general"
    detail = staff.get(f"/api/tickets/{ticket['id']}").json()
    assert [m["role"] for m in detail["transcript"]] == ["resident", "system"]
    # The session id is the resident's key to the chat; staff see a fingerprint only.
    assert detail["address"].startswith("web:")
    assert sid not in detail["address"]

    # The resident listens for live updates while the agent answers from the console.
    events: list[dict[str, Any]] = []
    listening = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=server.url, timeout=20) as c,
            c.stream("GET", f"/api/chat/sessions/{sid}/events") as r,
        ):
            kind = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                    listening.set()
                elif line.startswith("data:") and kind == "message":
                    events.append(json.loads(line[5:]))
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert listening.wait(10)
    r = staff.post(
        f"/api/tickets/{ticket['id']}/reply",
        json={"text": "Hello, this is Anna from customer service."},
    )
    assert r.status_code == 202, r.text
    t.join(10)
    assert events and events[0]["role"] == "agent"
    assert events[0]["text"] == "Hello, this is Anna from customer service."
    messages = wait_for(api, sid, "agent")
    assert messages[-1]["id"] == r.json()["message_id"]

    # While a person owns the conversation the AI stays silent.
    send(api, sid, "Thanks! Also, when is the library open?")
    time.sleep(1.0)
    roles = [m["role"] for m in api.get(f"/api/chat/sessions/{sid}/messages").json()]
    assert roles == ["resident", "system", "agent", "resident"]

    resolved = staff.post(f"/api/tickets/{ticket['id']}/resolve")
    assert resolved.json()["status"] == "resolved"


def test_urgent_messages_get_emergency_guidance_and_a_ticket(api: httpx.Client) -> None:
    sid = new_session(api)
    send(api, sid, "Naapurini kaatui pihalle eikä hengitä!")
    notice = next(m for m in wait_for(api, sid, "system") if m["role"] == "system")
    assert notice["text"].startswith(phrases.phrase("emergency", "fi"))
    assert "112" in notice["text"]
    assert CASE.search(notice["text"])


def test_bad_input_gets_a_clear_error(api: httpx.Client) -> None:
    sid = new_session(api)
    r = api.post(f"/api/chat/sessions/{sid}/messages", json={"text": "   "})
    assert r.status_code == 422
    assert r.json()["detail"] == "The message is empty."
    r = api.post(f"/api/chat/sessions/{sid}/messages", json={"text": "x" * 4001})
    assert r.status_code == 422
    assert "too long" in r.json()["detail"]
    r = api.post("/api/chat/sessions/not-a-session/messages", json={"text": "Hei"})
    assert r.status_code == 404
    r = api.post(
        f"/api/chat/sessions/{sid}/messages",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    r = api.get("/api/tickets")
    assert r.status_code == 401
    assert r.json() == {"detail": "Sign in to use the console."}
    r = api.post("/api/auth/login", json={"username": "demo", "password": "wrong"})
    assert r.status_code == 401
    assert "wrong username or password" in r.json()["detail"]
    assert api.get("/console").status_code == 200  # the page with its sign-in form


def test_a_retried_message_is_stored_once(api: httpx.Client) -> None:
    sid = new_session(api)
    first = send(api, sid, "Miten haen lukioon?", client_message_id="retry-1")
    again = send(api, sid, "Miten haen lukioon?", client_message_id="retry-1")
    assert first == again
    wait_for(api, sid, "ai")
    time.sleep(0.5)
    roles = [m["role"] for m in api.get(f"/api/chat/sessions/{sid}/messages").json()]
    assert roles.count("resident") == 1


def test_health_and_metrics(api: httpx.Client) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "nats": "ok", "database": "ok"}
    metrics = api.get("/metrics").text
    for name in (
        "neuvonta_messages_received_total",
        "neuvonta_messages_answered_total",
        "neuvonta_messages_handed_off_total",
        "neuvonta_reply_latency_seconds_bucket",
    ):
        assert name in metrics


def test_a_restart_keeps_the_data_and_starts_quickly(tmp_path: Any) -> None:
    data = tmp_path / "var"
    first = start_server(data)
    try:
        with httpx.Client(base_url=first.url, timeout=10) as api:
            sid = new_session(api)
            send(api, sid, "Miten haen lukioon?")
            wait_for(api, sid, "ai")
    finally:
        assert stop_server(first) == 0
    assert "Stopping" in first.log()
    assert "created the admin demo" in first.log()
    started = time.monotonic()
    second = start_server(data)
    try:
        assert time.monotonic() - started < 15
        with httpx.Client(base_url=second.url, timeout=10) as api:
            roles = [m["role"] for m in api.get(f"/api/chat/sessions/{sid}/messages").json()]
            assert roles == ["resident", "ai"]
            send(api, sid, "Entä ammattikouluun?")
            wait_for(api, sid, "ai", count=2)
        # The demo account came with the first start only, and still signs in.
        assert "created the admin" not in second.log()
        assert "demo login:         demo / e2e-secret" in second.log()
        with second.staff_client() as staff:
            assert staff.get("/api/auth/me").json()["role"] == "admin"
    finally:
        assert stop_server(second) == 0


def worker_pids(server: RunningServer) -> list[int]:
    """The router worker processes ``serve`` runs as its children."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(c) for c in children if b"router.cli\0worker" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


def test_a_killed_router_worker_is_replaced_and_no_message_is_lost(tmp_path: Any) -> None:
    server = start_server(tmp_path / "var")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            (victim,) = worker_pids(server)
            os.kill(victim, signal.SIGKILL)
            # Accepted while no worker runs: JetStream keeps it for the replacement.
            sid = new_session(api)
            send(api, sid, "Miten haen lukioon?")
            messages = wait_for(api, sid, "ai", timeout=60)
            assert [m["role"] for m in messages] == ["resident", "ai"]
            (replacement,) = worker_pids(server)
            assert replacement != victim
            assert "router worker 0" in server.log() and "restarting" in server.log()
            # The web process shows the workers' figures.
            assert 'neuvonta_messages_answered_total{channel="web"} 1.0' in api.get("/metrics").text
    finally:
        assert stop_server(server) == 0
