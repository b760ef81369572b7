"""The agent console in a real headless Chromium against a running ``neuvonta serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

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


def open_handoff(api: httpx.Client, server: RunningServer, text: str = ASK_FOR_PERSON) -> Handoff:
    """A resident asks for a person over the chat API; returns the ticket that opened."""
    sid = new_session(api, "fi")
    send(api, sid, text)
    notice = next(m for m in wait_for(api, sid, "system") if m["role"] == "system")
    case = CASE.search(notice["text"])
    assert case, notice["text"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tickets = api.get("/api/tickets", params={"status": "all"}, auth=server.auth).json()
        for ticket in tickets:
            if ticket["case_number"] == case.group():
                return Handoff(sid, ticket)
        time.sleep(0.1)
    raise AssertionError(f"no ticket {case.group()} in the console API")


@pytest.fixture
def console(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """The console signed in as the demo agent, in Finnish, with live updates on."""
    context = browser.new_context(
        base_url=server.url,
        locale="fi-FI",
        viewport={"width": 1280, "height": 900},
        http_credentials={"username": server.user, "password": server.password},
    )
    page = context.new_page()
    try:
        page.goto("/console")
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


def test_the_console_asks_for_a_sign_in(api: httpx.Client) -> None:
    r = api.get("/console")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")


def test_the_console_has_no_accessibility_violations(
    console: Page, api: httpx.Client, server: RunningServer
) -> None:
    expect(console.get_by_role("heading", level=1)).to_have_count(1)
    expect(console.get_by_label("Jono")).to_be_visible()
    expect(console.get_by_label("Tila")).to_be_visible()
    assert_no_violations(console, "ticket list")

    handoff = open_handoff(api, server)
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


def test_an_agent_answers_a_new_ticket_with_the_keyboard_and_resolves_it(
    console: Page, resident: BrowserContext, api: httpx.Client, server: RunningServer
) -> None:
    handoff = open_handoff(api, server)
    chat = chat_page_of(resident, handoff.session_id)
    expect(chat.locator(".msg--system")).to_contain_text(handoff.case)

    # The new ticket appears in the open list without a reload.
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
    expect(console.locator("#ticket-status")).to_have_text("Avoin")
    transcript = console.locator("#transcript")
    expect(transcript.locator(".tmsg--resident")).to_contain_text(ASK_FOR_PERSON)
    expect(transcript.locator(".tmsg--resident .tmsg__who")).to_have_text("Asukas")
    expect(transcript.locator(".tmsg--system")).to_contain_text(handoff.case)

    reply = "Hei, tässä Anna asiakaspalvelusta. Miten voin auttaa?"
    console.get_by_label("Vastauksesi").fill(reply)
    send_button = console.get_by_role("button", name="Lähetä vastaus")
    send_button.focus()
    console.keyboard.press("Enter")
    expect(console.get_by_role("status")).to_have_text("Vastaus lähetetty asukkaalle.")
    expect(console.get_by_label("Vastauksesi")).to_have_value("")
    expect(transcript.locator(".tmsg--agent")).to_contain_text(reply)
    expect(transcript.locator(".tmsg--agent .tmsg__who")).to_have_text("Asiakaspalvelija (demo)")

    # The resident sees it live in the chat.
    agent_message = chat.locator(".msg--agent")
    expect(agent_message).to_have_count(1, timeout=TIMEOUT)
    expect(agent_message.locator(".msg__text")).to_have_text(reply)
    expect(agent_message.locator(".msg__who")).to_have_text("Asiakaspalvelija")

    resolve = console.get_by_role("button", name="Merkitse ratkaistuksi")
    resolve.focus()
    console.keyboard.press("Enter")
    expect(console.locator("#ticket-status")).to_have_text("Ratkaistu")
    expect(console.get_by_role("status")).to_contain_text("ratkaistuksi")
    expect(resolve).to_be_disabled()
    expect(console.get_by_label("Vastauksesi")).to_be_disabled()
    expect(button).to_have_count(0)  # gone from the open tickets

    console.get_by_label("Tila").select_option("resolved")
    expect(ticket_button(console, handoff.case)).to_contain_text("Ratkaistu")

    detail = api.get(f"/api/tickets/{handoff.ticket['id']}", auth=server.auth).json()
    assert detail["status"] == "resolved"
    assert detail["resolved_by"] == "demo"


def test_html_written_by_a_resident_is_text_in_the_console(
    console: Page, api: httpx.Client, server: RunningServer
) -> None:
    handoff = open_handoff(api, server)
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
