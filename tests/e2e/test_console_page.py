"""The agent console in a real headless Chromium against a running ``neuvonta serve``."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from handoff.queues import DEFAULT_QUEUES
from tests.e2e.axe import assert_no_violations
from tests.e2e.conftest import RunningServer
from tests.e2e.test_api_flow import CASE, new_session, send, wait_for

ASK_FOR_PERSON = "Haluan puhua ihmisen kanssa"
TIMEOUT = 20_000  # ms


@dataclass(frozen=True)
class Handoff:
    session_id: str
    ticket: dict[str, Any]

    @property
    def case(self) -> str:
        return str(self.ticket["case_number"])


def open_handoff(api: httpx.Client, staff: httpx.Client, text: str = ASK_FOR_PERSON) -> Handoff:
    """A resident asks for a person over the chat API; returns the ticket that opened."""
    sid = new_session(api, "fi")
    send(api, sid, text)
    notice = next(m for m in wait_for(api, sid, "system") if m["role"] == "system")
    case = CASE.search(notice["text"])
    assert case, notice["text"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tickets = staff.get("/api/tickets", params={"status": "all"}).json()
        for ticket in tickets:
            if ticket["case_number"] == case.group():
                return Handoff(sid, ticket)
        time.sleep(0.1)
    raise AssertionError(f"no ticket {case.group()} in the console API")


def sign_in(page: Page, username: str, password: str) -> None:
    """Through the console's sign-in form, with the keyboard only."""
    expect(page.get_by_role("heading", name="Kirjaudu sisään")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_label("Käyttäjätunnus")).to_be_focused()  # where the page starts
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Salasana")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def new_console_context(browser: Browser, server: RunningServer) -> BrowserContext:
    return browser.new_context(
        base_url=server.url, locale="fi-FI", viewport={"width": 1280, "height": 900}
    )


@pytest.fixture
def console(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """The console signed in as the demo admin, in Finnish, with live updates on."""
    context = new_console_context(browser, server)
    page = context.new_page()
    try:
        page.goto("/console")
        sign_in(page, server.user, server.password)
        expect(page.locator("#live")).to_have_attribute("data-state", "on", timeout=TIMEOUT)
        expect(page.locator("#ticket-count")).not_to_have_text("Ladataan…")
        yield page
    finally:
        context.close()


@pytest.fixture
def resident(browser: Browser, server: RunningServer) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=server.url, locale="fi-FI")
    try:
        yield context
    finally:
        context.close()


def chat_page_of(context: BrowserContext, session_id: str) -> Page:
    """The resident's chat page continuing an existing session (as after a reload)."""
    stored = json.dumps({"session_id": session_id, "language": "fi"})
    context.add_init_script(f"window.localStorage.setItem('neuvonta.chat.v1', {stored!r});")
    page = context.new_page()
    page.goto("/")
    return page


def ticket_button(console: Page, case: str) -> Locator:
    return console.locator("#ticket-list .ticket", has_text=case)


def test_signing_in_and_out_with_the_keyboard(
    browser: Browser, server: RunningServer, api: httpx.Client
) -> None:
    assert api.get("/console").status_code == 200  # the page; the data needs a sign-in
    assert api.get("/api/tickets").status_code == 401
    context = new_console_context(browser, server)
    page = context.new_page()
    try:
        page.goto("/console")
        expect(page.get_by_role("heading", name="Kirjaudu sisään")).to_be_visible()
        expect(page.locator("#console-view")).to_be_hidden()
        assert_no_violations(page, "sign-in form")

        # A wrong password: one message for every failure, announced; type it again.
        sign_in(page, server.user, "wrong-password")
        message = page.locator("#login-message")
        expect(message).to_have_text(
            "Kirjautuminen epäonnistui. Tarkista käyttäjätunnus ja salasana."
        )
        expect(message).to_have_attribute("aria-live", "assertive")
        password = page.get_by_label("Salasana")
        expect(password).to_be_focused()
        expect(password).to_have_value("")
        assert_no_violations(page, "sign-in error")
        page.keyboard.type(server.password)
        page.keyboard.press("Enter")

        expect(page.locator("#account-name")).to_have_text("Kirjautunut: demo")
        # An admin gets to the thresholds page from the console.
        expect(page.get_by_role("link", name="Kynnysarvot")).to_have_attribute("href", "/admin")
        expect(page.locator("#ticket-list-title")).to_be_focused()
        expect(page.locator("#live")).to_have_attribute("data-state", "on", timeout=TIMEOUT)
        expect(page.locator("#login-view")).to_be_hidden()
        # The session cookie is out of the script's reach; the CSRF token is for it to send.
        cookies = page.evaluate("() => document.cookie")
        assert "neuvonta_csrf=" in cookies and "neuvonta_session" not in cookies
        page.reload()  # the session outlives the page
        expect(page.locator("#account-name")).to_have_text("Kirjautunut: demo")

        page.get_by_role("button", name="In English").click()
        expect(page.locator("#account-name")).to_have_text("Signed in as demo")
        sign_out = page.get_by_role("button", name="Sign out")
        sign_out.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.locator("#login-message")).to_have_text("You have signed out.")
        expect(page.locator("#console-view")).to_be_hidden()
        expect(page.locator("#ticket-list .ticket")).to_have_count(0)
        assert page.evaluate("() => fetch('/api/auth/me').then(r => r.status)") == 401
        assert_no_violations(page, "signed out, in English")
    finally:
        context.close()


class TicketEvents:
    """The console's live ticket events as one account receives them, in a thread."""

    def __init__(
        self, server: RunningServer, username: str, password: str, until_first: bool = False
    ) -> None:
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=self._listen, args=(server, username, password, until_first), daemon=True
        )
        self.thread.start()
        assert self.ready.wait(10), f"no event stream for {username}"

    def _listen(self, server: RunningServer, username: str, password: str, first: bool) -> None:
        # Two quiet seconds end the listening.
        timeout = httpx.Timeout(10, read=2)
        with (
            server.staff_client(username, password, timeout=timeout) as c,
            c.stream("GET", "/api/tickets/events") as r,
        ):
            kind = None
            try:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                        if kind == "ready":
                            self.ready.set()
                    elif line.startswith("data:") and kind == "ticket":
                        self.events.append(json.loads(line[5:]))
                        if first:
                            return
            except httpx.ReadTimeout:
                return

    def result(self) -> list[dict[str, Any]]:
        self.thread.join(15)
        assert not self.thread.is_alive()
        return self.events


def test_an_agent_cannot_open_a_ticket_of_another_queue(
    browser: Browser, server: RunningServer, api: httpx.Client, staff: httpx.Client
) -> None:
    # Asta works in the building queue; a request for a person goes elsewhere.
    (queue,) = (q for q in DEFAULT_QUEUES if q.name == "building")
    server.add_user("asta", "asta-password-1", role="agent", queues=[queue.name])
    # Live events: the admin's stream shows the new ticket, Asta's does not.
    admin_events = TicketEvents(server, server.user, server.password, until_first=True)
    asta_events = TicketEvents(server, "asta", "asta-password-1")
    handoff = open_handoff(api, staff)
    ticket_id = handoff.ticket["id"]
    assert handoff.ticket["queue"] != queue.name
    assert ticket_id in [e["ticket_id"] for e in admin_events.result()]
    assert asta_events.result() == []

    with server.staff_client("asta", "asta-password-1") as asta:
        r = asta.get(f"/api/tickets/{ticket_id}")
        assert r.status_code == 403
        assert asta.post(f"/api/tickets/{ticket_id}/reply", json={"text": "Hei"}).status_code == 403
        assert [q["name"] for q in asta.get("/api/queues").json()] == [queue.name]
        listed = asta.get("/api/tickets", params={"status": "all"}).json()
        assert all(t["queue"] == queue.name for t in listed)

    context = new_console_context(browser, server)
    page = context.new_page()
    try:
        page.goto(f"/console#ticket-{ticket_id}")  # a link to it, say from a colleague
        sign_in(page, "asta", "asta-password-1")
        expect(page.locator("#account-name")).to_have_text("Kirjautunut: asta")
        expect(page.get_by_role("link", name="Kynnysarvot")).to_have_count(0)
        expect(page.get_by_role("status")).to_have_text(
            "Virhe: Sinulla ei ole oikeutta tämän jonon tapauksiin."
        )
        expect(page.locator("#detail")).to_be_hidden()
        expect(page.locator("#detail-title")).to_have_text("Valitse tapaus listasta")
        expect(page.locator("#ticket-count")).not_to_have_text("Ladataan…")
        expect(ticket_button(page, handoff.case)).to_have_count(0)
        expect(page.locator("#queue-filter option")).to_have_text(
            ["Kaikki jonot", queue.label["fi"]]
        )

        # Disabled meanwhile: the next request finds the session gone, and the form is back.
        assert server.users("disable", "asta") == "disabled asta; ended 1 session\n"
        page.get_by_label("Tila").select_option("all")
        expect(page.locator("#login-message")).to_have_text(
            "Kirjautumisesi on vanhentunut. Kirjaudu uudelleen."
        )
        expect(page.locator("#console-view")).to_be_hidden()
        expect(page.get_by_label("Salasana")).to_be_focused()
    finally:
        context.close()


def test_the_console_has_no_accessibility_violations(
    console: Page, api: httpx.Client, staff: httpx.Client
) -> None:
    expect(console.get_by_role("heading", level=1)).to_have_count(1)
    expect(console.get_by_label("Jono")).to_be_visible()
    expect(console.get_by_label("Tila")).to_be_visible()
    assert_no_violations(console, "ticket list")

    handoff = open_handoff(api, staff)
    button = ticket_button(console, handoff.case)
    expect(button).to_be_visible(timeout=TIMEOUT)
    button.click()
    expect(console.locator("#detail-title")).to_contain_text(handoff.case)
    expect(console.locator("#transcript")).to_contain_text(ASK_FOR_PERSON)
    assert_no_violations(console, "ticket open")

    console.get_by_role("button", name="In English").click()
    expect(console.locator("html")).to_have_attribute("lang", "en")
    expect(console.get_by_label("Queue")).to_be_visible()
    expect(console.get_by_role("button", name="Send reply")).to_be_visible()
    assert_no_violations(console, "in English")


def test_an_agent_claims_answers_notes_and_resolves_a_ticket_with_the_keyboard(
    console: Page, resident: BrowserContext, api: httpx.Client, staff: httpx.Client
) -> None:
    handoff = open_handoff(api, staff)
    chat = chat_page_of(resident, handoff.session_id)
    expect(chat.locator(".msg--system")).to_contain_text(handoff.case)

    # The new ticket appears in the list without a reload.
    button = ticket_button(console, handoff.case)
    expect(button).to_be_visible(timeout=TIMEOUT)
    expect(button).to_contain_text("Asukas pyysi ihmistä")
    expect(button).to_contain_text("Verkkochat")
    expect(button).to_contain_text(ASK_FOR_PERSON)

    button.focus()
    console.keyboard.press("Enter")
    title = console.locator("#detail-title")
    expect(title).to_have_text(f"Tapaus {handoff.case}")
    expect(title).to_be_focused()
    expect(button).to_have_attribute("aria-current", "true")
    status = console.locator("#ticket-status")
    expect(status).to_have_text("Avoin")
    transcript = console.locator("#transcript")
    expect(transcript.locator(".tmsg--resident")).to_contain_text(ASK_FOR_PERSON)
    expect(transcript.locator(".tmsg--resident .tmsg__who")).to_have_text("Asukas")
    expect(transcript.locator(".tmsg--system")).to_contain_text(handoff.case)
    timeline = console.locator("#timeline li")
    expect(timeline).to_have_count(1)
    expect(timeline.first).to_contain_text("Tapaus avattiin jonoon")

    # Claim: the ticket is the agent's, and the reply box is next.
    claim = console.get_by_role("button", name="Ota käsittelyyn")
    claim.focus()
    console.keyboard.press("Enter")
    expect(status).to_have_text("Työn alla")
    expect(console.get_by_role("status")).to_have_text(f"Tapaus {handoff.case} on nyt sinulla.")
    expect(claim).to_be_disabled()
    expect(console.get_by_label("Vastauksesi")).to_be_focused()
    expect(console.locator("#facts")).to_contain_text("Käsittelijä")
    expect(button).to_contain_text("Käsittelijä: demo")
    expect(timeline.last).to_contain_text("Otettiin käsittelyyn (Avoin → Työn alla)")

    # An internal note: in the timeline, never in the resident's chat.
    secret = "Sisäinen: asukas soitti myös puhelimeen."
    console.get_by_label("Muistiinpano työtovereille").fill(secret)
    console.get_by_role("button", name="Tallenna muistiinpano").press("Enter")
    expect(console.get_by_role("status")).to_have_text("Muistiinpano tallennettu.")
    expect(timeline.last).to_contain_text(secret)

    reply = "Hei, tässä Anna asiakaspalvelusta. Miten voin auttaa?"
    box = console.get_by_label("Vastauksesi")
    box.fill(reply)
    box.press("Control+Enter")
    expect(console.get_by_role("status")).to_have_text("Vastaus lähetetty asukkaalle.")
    expect(box).to_have_value("")
    expect(status).to_have_text("Odottaa asukasta")
    agent = transcript.locator(".tmsg--agent")
    expect(agent).to_contain_text(reply)
    expect(agent.locator(".tmsg__who")).to_have_text("Asiakaspalvelija (demo)")
    expect(agent.locator(".tmsg__meta")).to_contain_text("Toimitus: toimitettu")
    expect(timeline.last).to_contain_text("Vastattiin asukkaalle (Työn alla → Odottaa asukasta)")

    # The resident sees it live in the chat, and nothing of the note.
    agent_message = chat.locator(".msg--agent")
    expect(agent_message).to_have_count(1, timeout=TIMEOUT)
    expect(agent_message.locator(".msg__text")).to_have_text(reply)
    expect(agent_message.locator(".msg__who")).to_have_text("Asiakaspalvelija")
    expect(chat.get_by_role("log")).not_to_contain_text(secret)

    # The resident answers: the ticket is open again, live.
    chat_box = chat.get_by_label("Viestisi")
    chat_box.fill("Kiitos! Asuntoni numero on A 12.")
    chat_box.press("Enter")
    expect(status).to_have_text("Avoin", timeout=TIMEOUT)
    expect(timeline.last).to_contain_text("Asukas vastasi (Odottaa asukasta → Avoin)")
    expect(timeline.last).to_contain_text("asukas")

    resolve = console.get_by_role("button", name="Merkitse ratkaistuksi")
    resolve.focus()
    console.keyboard.press("Enter")
    expect(status).to_have_text("Ratkaistu")
    expect(console.get_by_role("status")).to_contain_text("ratkaistuksi")
    expect(resolve).to_be_disabled()
    expect(console.get_by_label("Vastauksesi")).to_be_disabled()
    expect(button).to_have_count(0)  # gone from the tickets in progress
    reopen = console.get_by_role("button", name="Avaa uudelleen")
    expect(reopen).to_be_visible()

    console.get_by_label("Tila").select_option("resolved")
    expect(ticket_button(console, handoff.case)).to_contain_text("Ratkaistu")

    detail = staff.get(f"/api/tickets/{handoff.ticket['id']}").json()
    assert detail["status"] == "resolved"
    assert detail["resolved_by"] == "demo"
    assert [e["kind"] for e in detail["timeline"]] == [
        "opened",
        "claim",
        "note",
        "reply",
        "resident_message",
        "resolve",
    ]
    messages = api.get(f"/api/chat/sessions/{handoff.session_id}/messages").text
    assert secret not in messages


def test_filters_find_tickets_and_a_transfer_moves_one(
    console: Page, server: RunningServer, api: httpx.Client, staff: httpx.Client
) -> None:
    handoff = open_handoff(api, staff)
    button = ticket_button(console, handoff.case)
    expect(button).to_be_visible(timeout=TIMEOUT)
    expect(button.locator(".badge--overdue")).to_have_count(0)

    # Ten days unanswered (in the server's own database): overdue, flagged and counted.
    with contextlib.closing(sqlite3.connect(server.data_dir / "neuvonta.db")) as db, db:
        db.execute(
            "UPDATE ticket SET created_at = datetime(created_at, '-10 days') WHERE id = ?",
            (handoff.ticket["id"],),
        )
    console.get_by_label("Vain myöhässä olevat").check()
    expect(console.locator("#ticket-list .ticket")).to_have_count(1)
    expect(button.locator(".badge--overdue")).to_have_text("Myöhässä")
    expect(console.locator("#overdue-count")).to_have_text(
        "Myöhässä: 1 (ensimmäinen vastaus tavoiteajan jälkeen)"
    )
    console.get_by_label("Vain myöhässä olevat").uncheck()

    search = console.get_by_label("Haku")
    search.fill(handoff.case)
    search.press("Enter")
    expect(console.locator("#ticket-list .ticket")).to_have_count(1)
    search.fill("sanaa-jota-ei-ole-missään")
    search.press("Enter")
    expect(console.locator("#ticket-count")).to_have_text("Ei tapauksia näillä rajauksilla.")
    search.fill("")
    search.press("Enter")
    console.get_by_label("Vain kiireelliset").check()
    expect(button).to_have_count(0)
    console.get_by_label("Vain kiireelliset").uncheck()
    expect(button).to_be_visible()

    button.click()
    expect(console.locator("#detail-title")).to_contain_text(handoff.case)
    (housing,) = (q for q in DEFAULT_QUEUES if q.name == "housing")
    console.get_by_label("Siirron kohde").select_option("housing")
    note = console.get_by_label("Syy siirtoon (näkyy vain asiakaspalvelulle)")
    note.fill("Koskee vuokra-asuntoa.")
    note.press("Tab")
    console.keyboard.press("Enter")  # the focused Transfer button
    expect(console.get_by_role("status")).to_have_text(
        f"Tapaus {handoff.case} on siirretty jonoon {housing.label['fi']}."
    )
    timeline = console.locator("#timeline li")
    expect(timeline.last).to_contain_text(f"jonoon {housing.label['fi']}")
    expect(timeline.last).to_contain_text("Koskee vuokra-asuntoa.")
    expect(console.locator("#facts")).to_contain_text(housing.label["fi"])
    assert staff.get(f"/api/tickets/{handoff.ticket['id']}").json()["queue"] == "housing"


def test_html_written_by_a_resident_is_text_in_the_console(
    console: Page, api: httpx.Client, staff: httpx.Client
) -> None:
    handoff = open_handoff(api, staff)
    button = ticket_button(console, handoff.case)
    expect(button).to_be_visible(timeout=TIMEOUT)
    button.click()
    expect(console.locator("#detail-title")).to_contain_text(handoff.case)

    # Written while a person owns the conversation: the open ticket refreshes live.
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    send(api, handoff.session_id, evil)
    transcript = console.locator("#transcript .tmsg--resident .tmsg__text")
    expect(transcript.last).to_have_text(evil, timeout=TIMEOUT)
    expect(button.locator(".ticket__preview")).to_have_text(evil, timeout=TIMEOUT)
    assert console.locator("#transcript img, #ticket-list img").count() == 0
    assert console.evaluate("() => typeof window.__pwned") == "undefined"
