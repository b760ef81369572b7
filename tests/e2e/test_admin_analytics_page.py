"""The what-if panel and the analytics page in a real headless Chromium against a running
``neuvonta serve`` (offline agent, demo knowledge base): residents' messages go through the
real router first; the admin changes a threshold in the form and sees the what-if table
change before saving; the analytics page shows the figures; axe finds no WCAG 2.1 AA
violations."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.axe import assert_no_violations
from tests.e2e.conftest import RunningServer
from tests.e2e.test_admin_page import policy_version_of
from tests.e2e.test_api_flow import new_session, send

TIMEOUT = 20_000  # ms
QUESTIONS = (
    ("fi", "Mitä kirjastossa voi tehdä?"),
    ("fi", "Miten haen rakennuslupaa omakotitalolle?"),
    ("sv", "Hur ansöker jag om bostadsbidrag?"),
)


def residents_ask(server: RunningServer) -> None:
    """Each question from its own resident; returns once the router decided on all."""
    with httpx.Client(base_url=server.url, timeout=10) as api:
        ids = [send(api, new_session(api, lang), text) for lang, text in QUESTIONS]
    for message_id in ids:
        policy_version_of(server, message_id)


def signed_in(browser: Browser, server: RunningServer) -> BrowserContext:
    context = browser.new_context(
        base_url=server.url, locale="fi-FI", viewport={"width": 1280, "height": 900}
    )
    r = context.request.post(
        "/api/auth/login", data={"username": server.user, "password": server.password}
    )
    assert r.status == 200, r.text()
    return context


def test_the_whatif_table_follows_the_form_before_saving(
    browser: Browser, server: RunningServer
) -> None:
    residents_ask(server)
    context = signed_in(browser, server)
    page = context.new_page()
    try:
        page.goto("/admin")
        expect(page.get_by_role("heading", name="Mitä jos?")).to_be_visible(timeout=TIMEOUT)
        total = page.locator("#whatif-rows tr.total")
        expect(total).to_be_visible(timeout=TIMEOUT)
        expect(total.locator("th")).to_have_text("Kaikki jonot")
        answered = total.locator("td").nth(1)
        summary = page.locator("#whatif-summary")
        expect(summary).to_contain_text(f"{len(QUESTIONS)} viestiä", timeout=TIMEOUT)

        # At 0 the AI would answer every draft it had; at 1 none: the figures change as
        # the admin types, nothing is saved.
        default = page.get_by_label("Oletusraja", exact=True)
        default.fill("0")
        expect(answered).to_have_text(re.compile(r"→"), timeout=TIMEOUT)
        at_zero = answered.inner_text()
        default.fill("1")
        expect(answered).to_have_text(re.compile(r"→ 0\s%$"), timeout=TIMEOUT)
        assert answered.inner_text() != at_zero
        expect(summary).to_contain_text("tekoäly vastaisi 0\u00a0%")
        # Leaving the field (its change event) or typing a note leaves the candidate as it
        # was: no new replay of every message.
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/admin/whatif" in r.url else None)
        default.press("Tab")
        page.locator("#note").fill("vain muistiinpano")
        page.wait_for_timeout(600)
        assert asked == []
        expect(page.locator("#whatif-chart svg[role='img']")).to_be_visible()
        expect(page.locator("#whatif-chart svg title")).to_have_text(
            "Tekoälyn vastausosuus ja osuvuus eri rajoilla"
        )
        # The chart's figures as a table: one row per default threshold 0, 0.05, …, 1.
        page.get_by_text("Kaavion luvut taulukkona").click()
        expect(page.locator("#whatif-curve-rows tr")).to_have_count(21)
        expect(page.locator("#whatif-precision")).to_contain_text("Osuvuutta ei voi")
        # A queue's own threshold shows in its row.
        page.get_by_label("Kulttuuri ja vapaa-aika", exact=True).fill("0.9")
        row = page.locator("#whatif-rows tr[data-queue='culture-leisure']")
        expect(row.locator("td").first).to_have_text(re.compile(r"0,5 → 0,9"), timeout=TIMEOUT)
        expect(page.locator("#version-info")).to_contain_text("versio 0")
        assert_no_violations(page, "what-if panel")

        # In English the panel speaks English.
        page.get_by_role("button", name="In English").click()
        expect(page.get_by_role("heading", name="What if?")).to_be_visible()
        expect(total.locator("th")).to_have_text("All queues")
    finally:
        context.close()


def test_the_analytics_page_shows_the_figures_with_tables(
    browser: Browser, server: RunningServer
) -> None:
    residents_ask(server)
    context = signed_in(browser, server)
    page = context.new_page()
    try:
        page.goto("/admin")
        page.get_by_role("link", name="Palvelun tunnusluvut ja tietoaukot").click()
        expect(page).to_have_url(re.compile(r"/admin/analytics$"))
        expect(page.get_by_role("heading", name="Palvelun tunnusluvut")).to_be_visible(
            timeout=TIMEOUT
        )
        expect(page.locator("#resolution-rate")).to_have_text(re.compile(r"\d+\s%"))
        web = page.locator("#volume-rows tr", has_text="Verkkochat")
        expect(web.locator("td").nth(1)).to_have_text(re.compile(r"^\d+$"))
        assert int(web.locator("td").nth(1).inner_text()) >= len(QUESTIONS)
        expect(page.locator("#volume-chart svg[role='img']")).to_be_visible()
        expect(page.locator("#response-rows tr.total th")).to_have_text("Kaikki jonot")
        expect(page.locator("#labels-rows th")).to_have_text(["Osasto oikein", "Vastaus oikein"])
        expect(page.get_by_role("link", name="Lataa kaikki CSV-tiedostona")).to_have_attribute(
            "href", "/api/admin/knowledge-gaps.csv?days=30"
        )
        assert_no_violations(page, "analytics, 30 days")

        page.get_by_label("Aikaväli").select_option("7")
        expect(page.get_by_role("link", name="Lataa kaikki CSV-tiedostona")).to_have_attribute(
            "href", "/api/admin/knowledge-gaps.csv?days=7", timeout=TIMEOUT
        )
        r = context.request.get("/api/admin/knowledge-gaps.csv?days=7")
        assert r.status == 200
        assert r.text().splitlines()[0].startswith("group,language,questions_in_group")

        page.get_by_role("button", name="På svenska").click()
        expect(page.get_by_role("heading", name="Tjänstens nyckeltal")).to_be_visible()
        assert_no_violations(page, "analytics in Swedish")
    finally:
        context.close()


def test_signed_out_the_analytics_page_says_where_to_sign_in(
    browser: Browser, server: RunningServer
) -> None:
    context = browser.new_context(base_url=server.url, locale="fi-FI")
    page = context.new_page()
    try:
        page.goto("/admin/analytics")
        expect(page.get_by_role("heading", name="Kirjaudu sisään")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#analytics-view")).to_be_hidden()
        assert_no_violations(page, "signed out")
    finally:
        context.close()
