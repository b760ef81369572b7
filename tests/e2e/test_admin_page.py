"""The admin thresholds page in a real headless Chromium against a running ``neuvonta serve``:
the change is saved, shown in the history, and the router worker process decides the next
message under the new version."""

from __future__ import annotations

import sqlite3
import time

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.axe import assert_no_violations
from tests.e2e.conftest import RunningServer
from tests.e2e.test_api_flow import new_session, send

TIMEOUT = 20_000  # ms


def policy_version_of(server: RunningServer, message_id: str, timeout: float = 15.0) -> int:
    """The thresholds version the router recorded for its decision on ``message_id``."""
    db = server.data_dir / "neuvonta.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT policy_version FROM decision WHERE message_id = ?", (message_id,)
            ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError(f"no decision on {message_id} in time")


def test_an_admin_changes_a_threshold_and_sees_it_in_the_history(
    browser: Browser, server: RunningServer
) -> None:
    context = browser.new_context(
        base_url=server.url, locale="fi-FI", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        # Signed out: the page says where to sign in.
        page.goto("/admin")
        expect(page.get_by_role("heading", name="Kirjaudu sisään")).to_be_visible(timeout=TIMEOUT)
        expect(
            page.get_by_role("link", name="Kirjaudu asiakaspalvelun työpöydällä")
        ).to_have_attribute("href", "/console")
        expect(page.locator("#admin-view")).to_be_hidden()
        assert_no_violations(page, "signed out")

        # Signed in as the demo admin (the session cookie the console's sign-in sets).
        r = context.request.post(
            "/api/auth/login", data={"username": server.user, "password": server.password}
        )
        assert r.status == 200, r.text()
        page.reload()
        expect(page.get_by_role("heading", name="Rajat ja säännöt")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#version-info")).to_have_text(
            "Käytössä versio 0: asetusten oletusarvot, ei muutoksia."
        )
        expect(page.get_by_label("Oletusraja")).to_have_value("0.5")

        # A value outside 0–1 is refused with the reason, announced, on the field.
        health = page.get_by_label("Terveyspalvelut", exact=True)
        health.fill("1.5")
        page.get_by_role("button", name="Tallenna").click()
        errors = page.locator("#form-errors")
        expect(errors).to_have_attribute("aria-live", "assertive")
        expect(errors).to_contain_text("Terveyspalvelut: raja on luku väliltä 0–1")
        expect(health).to_have_attribute("aria-invalid", "true")
        expect(health).to_be_focused()
        assert_no_violations(page, "validation error")

        health.fill("")
        page.get_by_label("Kulttuuri ja vapaa-aika", exact=True).fill("0.8")
        page.get_by_label("Sosiaalipalvelut: aina ihmiselle").check()
        page.get_by_label("Muutoksen syy (valinnainen)").fill("pilotti")
        page.get_by_role("button", name="Tallenna").click()
        expect(page.locator("#save-status")).to_have_text(
            "Tallennettu: versio 1 on nyt käytössä.", timeout=TIMEOUT
        )
        saved_at = time.monotonic()
        expect(errors).to_be_empty()
        expect(health).not_to_have_attribute("aria-invalid", "true")

        # The router worker (its own process) decides the next message under version 1.
        with httpx.Client(base_url=server.url, timeout=10) as api:
            message_id = send(api, new_session(api, "fi"), "Mitä kirjastossa voi tehdä?")
        sent_after = time.monotonic() - saved_at
        assert sent_after < 2.0
        assert policy_version_of(server, message_id) == 1

        row = page.locator("#history-rows tr").first
        expect(row).to_contain_text("demo")
        expect(row).to_contain_text("Kulttuuri ja vapaa-aika: oletus → 0,8")
        expect(row).to_contain_text("Sosiaalipalvelut: aina ihmiselle")
        expect(row).to_contain_text("pilotti")
        expect(page.locator("#version-info")).to_contain_text("Käytössä versio 1: muuttanut demo")
        assert_no_violations(page, "saved, with history")

        # In Swedish, history included.
        page.get_by_role("button", name="På svenska").click()
        expect(page.locator("html")).to_have_attribute("lang", "sv")
        expect(page.get_by_role("heading", name="Gränser och regler")).to_be_visible()
        expect(row).to_contain_text("Kultur och fritid: standard → 0,8")
        expect(page.get_by_label("Kultur och fritid", exact=True)).to_have_value("0.8")
    finally:
        context.close()
