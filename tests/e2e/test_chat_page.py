"""The resident chat page in a real headless Chromium against a running ``neuvonta serve``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from router import phrases
from tests.e2e.axe import assert_no_violations
from tests.e2e.conftest import RunningServer
from tests.e2e.test_api_flow import CASE

LIBRARY_QUESTION = "Mitä kirjastossa voi tehdä ja miten lainaan kirjoja?"
REPLY_TIMEOUT = 20_000  # ms: the offline agent answers in well under a second


@pytest.fixture
def page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """A fresh browser profile (no stored session) with a Finnish browser language."""
    context = browser.new_context(
        base_url=server.url, locale="fi-FI", viewport={"width": 1024, "height": 800}
    )
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def open_chat(page: Page) -> None:
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_label("Viestisi")).to_be_editable()


def ask(page: Page, text: str) -> None:
    box = page.get_by_label("Viestisi")
    box.fill(text)
    box.press("Enter")


def test_the_page_says_an_ai_answers_and_has_no_accessibility_violations(page: Page) -> None:
    open_chat(page)
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    for landmark in ("banner", "main", "contentinfo"):
        expect(page.get_by_role(landmark)).to_have_count(1)
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("tekoäly")
    expect(notice).to_contain_text("Haluan puhua ihmisen kanssa")
    expect(notice).to_contain_text("henkilötunnus")
    log = page.get_by_role("log")
    expect(log).to_have_attribute("aria-live", "polite")
    assert_no_violations(page, "empty chat")


def test_a_question_gets_an_ai_answer_with_sources_that_survives_a_reload(page: Page) -> None:
    open_chat(page)
    ask(page, LIBRARY_QUESTION)
    # Shown at once, before the server has answered.
    expect(page.locator(".msg--resident")).to_contain_text(LIBRARY_QUESTION)
    answer = page.locator(".msg--ai")
    expect(answer).to_have_count(1, timeout=REPLY_TIMEOUT)
    expect(answer).to_be_visible()
    expect(answer.locator(".msg__who")).to_have_text("Tekoälyavustaja")
    # EU AI Act: the first answer says that an AI answers.
    expect(answer.locator(".msg__text")).to_contain_text(phrases.disclosure("fi"))
    links = answer.locator(".msg__sources a")
    expect(links.first).to_be_visible()
    href = links.first.get_attribute("href") or ""
    assert re.match(r"https?://", href), href
    assert "noopener" in (links.first.get_attribute("rel") or "")
    expect(page.get_by_label("Viestisi")).to_have_value("")
    expect(page.locator("#status-text")).to_have_text("")
    assert_no_violations(page, "after an AI answer")

    # A reload continues the conversation, even while live updates cannot connect.
    page.route("**/events", lambda route: route.abort())
    page.reload()
    expect(page.locator(".msg--resident")).to_have_count(1)
    expect(page.locator(".msg--ai")).to_have_count(1)
    expect(page.locator(".msg--resident .msg__text")).to_have_text(LIBRARY_QUESTION)
    status = page.get_by_role("status")
    expect(status).to_have_text("Yhteys katkesi. Yhdistetään uudelleen…")
    page.unroute("**/events")
    expect(status).to_have_text("", timeout=REPLY_TIMEOUT)


def test_asking_for_a_person_shows_a_notice_with_the_case_number(page: Page) -> None:
    open_chat(page)
    page.get_by_role("button", name="Puhu ihmisen kanssa").click()
    expect(page.locator(".msg--resident .msg__text")).to_have_text("Haluan puhua ihmisen kanssa")
    notice = page.locator(".msg--system")
    expect(notice).to_have_count(1, timeout=REPLY_TIMEOUT)
    expect(notice.locator(".msg__who")).to_have_text("Ilmoitus")
    expect(notice).to_contain_text(CASE)
    expect(page.locator(".msg--ai")).to_have_count(0)
    assert_no_violations(page, "after a handoff notice")


def test_html_from_the_resident_is_shown_as_text(page: Page) -> None:
    evil = '<img src=x onerror="window.__pwned=1">'
    open_chat(page)
    ask(page, evil)
    mine = page.locator(".msg--resident .msg__text")
    expect(mine).to_have_text(evil)
    # Also as loaded back from the server.
    expect(page.locator(".msg:not(.msg--resident)")).to_have_count(1, timeout=REPLY_TIMEOUT)
    page.reload()
    expect(mine).to_have_text(evil)
    assert page.locator("#log img").count() == 0
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def test_a_too_long_message_shows_the_reason_and_keeps_the_text(page: Page) -> None:
    open_chat(page)
    text = "x" * 4001
    ask(page, text)
    expect(page.get_by_role("alert")).to_contain_text("too long")
    expect(page.get_by_label("Viestisi")).to_have_value(text)
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.get_by_role("button", name="Lähetä", exact=True)).to_be_enabled()


def test_the_ui_speaks_swedish_and_english(
    page: Page, browser: Browser, server: RunningServer
) -> None:
    open_chat(page)
    page.get_by_role("button", name="På svenska").click()
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("button", name="På svenska")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Ditt meddelande")).to_be_visible()
    expect(page.get_by_role("button", name="Skicka", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Fråga om kommunens tjänster")
    expect(page.locator("#notice")).to_contain_text("Jag vill tala med en människa")
    # The conversation is opened in the chosen language.
    with page.expect_request("**/api/chat/sessions") as created:
        ask_box = page.get_by_label("Ditt meddelande")
        ask_box.fill("Hej")
        ask_box.press("Enter")
    assert created.value.post_data_json == {"language": "sv"}
    expect(page.locator(".msg--resident .msg__who")).to_have_text("Du")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "sv")

    # Without a stored choice, the browser's language decides.
    english = browser.new_context(base_url=server.url, locale="en-GB")
    try:
        other = english.new_page()
        other.goto("/")
        expect(other.locator("html")).to_have_attribute("lang", "en")
        expect(other.get_by_label("Your message")).to_be_visible()
        expect(other.get_by_role("button", name="Talk to a person")).to_be_visible()
    finally:
        english.close()


def test_keyboard_only_reaches_the_message_box_and_send_with_visible_focus(page: Page) -> None:
    open_chat(page)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the skip link is shown when focused"

    def focused() -> str:
        return str(page.evaluate("() => document.activeElement.id"))

    def outline() -> tuple[str, float]:
        style, width = page.evaluate(
            """() => {
                const s = getComputedStyle(document.activeElement);
                return [s.outlineStyle, parseFloat(s.outlineWidth)];
            }"""
        )
        return str(style), float(width)

    for _ in range(10):
        page.keyboard.press("Tab")
        if focused() == "message":
            break
    assert focused() == "message"
    style, width = outline()
    assert style != "none" and width >= 2, (style, width)

    # Shift+Enter is a new line, not a send.
    page.keyboard.type("Hei")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("toinen rivi")
    expect(page.get_by_label("Viestisi")).to_have_value("Hei\ntoinen rivi")
    expect(page.locator(".msg")).to_have_count(0)

    page.keyboard.press("Tab")
    assert focused() == "send"
    style, width = outline()
    assert style != "none" and width >= 2, (style, width)
    page.keyboard.press("Enter")
    expect(page.locator(".msg--resident .msg__text")).to_have_text("Hei\ntoinen rivi")
    expect(page.get_by_label("Viestisi")).to_be_focused()


def test_the_page_fits_a_narrow_screen_without_motion(
    browser: Browser, server: RunningServer
) -> None:
    # 320 CSS pixels wide: a small phone, or a 640 px window at 200 % zoom.
    context = browser.new_context(
        base_url=server.url,
        locale="fi-FI",
        viewport={"width": 320, "height": 640},
        reduced_motion="reduce",
    )
    try:
        page = context.new_page()
        open_chat(page)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, f"horizontal scrolling at 320 px: {width}"
        animation = page.evaluate(
            "() => getComputedStyle(document.querySelector('.status__dots span')).animationName"
        )
        assert animation == "none"
    finally:
        context.close()


def test_an_answer_that_overtakes_the_servers_acceptance_still_follows_its_question(
    page: Page,
) -> None:
    """The reply can arrive on the live stream before the 202 of the message it answers."""
    open_chat(page)
    ask(page, "Hei")  # opens the session and the live stream first
    expect(page.locator(".msg--ai")).to_have_count(1, timeout=REPLY_TIMEOUT)

    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/api/chat/sessions/*/messages", hold, times=1)
    ask(page, LIBRARY_QUESTION)
    page.wait_for_function("() => document.querySelector('.msg--pending') !== null")
    page.wait_for_timeout(100)
    assert held, "the message was not sent"
    accepted = held[0].fetch()  # the server takes it; its 202 is held back from the page
    expect(page.locator(".msg--ai")).to_have_count(2, timeout=REPLY_TIMEOUT)
    held[0].fulfill(response=accepted)
    expect(page.locator(".msg--pending")).to_have_count(0)
    roles = page.locator(".msg").evaluate_all("els => els.map(e => e.dataset.role)")
    assert roles == ["resident", "ai", "resident", "ai"], roles
    expect(page.locator("#status-text")).to_have_text("")


def test_a_rate_limited_message_says_how_long_to_wait_and_keeps_the_text(page: Page) -> None:
    open_chat(page)

    def limited(route: Route) -> None:
        route.fulfill(
            status=429,
            headers={"Retry-After": "42", "Content-Type": "application/json"},
            body='{"detail": "Too many messages in this chat: try again in 42 seconds."}',
        )

    page.route("**/api/chat/sessions/*/messages", limited)
    ask(page, LIBRARY_QUESTION)
    expect(page.get_by_role("alert")).to_contain_text("Odota 42 sekuntia")
    expect(page.get_by_label("Viestisi")).to_have_value(LIBRARY_QUESTION)
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.get_by_role("button", name="Lähetä", exact=True)).to_be_enabled()
    assert_no_violations(page, "rate limited")

    page.unroute("**/api/chat/sessions/*/messages")
    page.get_by_label("Viestisi").press("Enter")
    expect(page.locator(".msg--ai")).to_have_count(1, timeout=REPLY_TIMEOUT)
    expect(page.get_by_text("Odota 42 sekuntia")).to_have_count(0)
