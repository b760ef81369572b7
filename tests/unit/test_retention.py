"""The retention rules: which conversations are past their limit and may go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handoff.analytics import ANALYTICS_DAYS
from handoff.retention import (
    ConversationFacts,
    Kind,
    Limits,
    expired,
    keeps_statistics,
    kind_of,
    parse_address,
    resident_of,
    select_expired,
    too_old,
)
from router.events import Address, Channel

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LIMITS = Limits(web_days=90, contact_days=365)


def facts(
    thread_key: str,
    *,
    days: float,
    message_days: float | None = None,
    active: bool = False,
    cid: str = "c1",
) -> ConversationFacts:
    """A conversation last updated ``days`` ago, its latest message ``message_days`` ago."""
    return ConversationFacts(
        id=cid,
        thread_key=thread_key,
        updated_at=NOW - timedelta(days=days),
        last_message_at=None if message_days is None else NOW - timedelta(days=message_days),
        active_ticket=active,
    )


@pytest.mark.parametrize(
    ("thread_key", "kind"),
    [
        ("web:Zx9_secret-session", Kind.WEB),
        ("sms:+358401234567", Kind.CONTACT),
        ("whatsapp:+358401234567", Kind.CONTACT),
        ("telegram:123456", Kind.CONTACT),
        ("email:maija@example.fi#root@mail.example", Kind.CONTACT),
        ("retained:0f3c", Kind.STATISTICS),
    ],
)
def test_the_kind_is_that_of_the_first_thread(thread_key: str, kind: Kind) -> None:
    assert kind_of(thread_key) is kind


def test_a_web_chat_goes_after_the_web_limit_and_a_contact_after_the_contact_limit() -> None:
    assert expired(facts("web:s", days=91), LIMITS, NOW)
    assert not expired(facts("web:s", days=89), LIMITS, NOW)
    # The same age for an identified contact: kept, its limit is longer.
    assert not expired(facts("sms:+358401234567", days=91), LIMITS, NOW)
    assert expired(facts("sms:+358401234567", days=366), LIMITS, NOW)
    assert not expired(facts("email:a@b.fi#r", days=364), LIMITS, NOW)


def test_zero_days_keeps_that_kind_forever() -> None:
    keep_web = Limits(web_days=0, contact_days=30)
    assert not expired(facts("web:s", days=10_000), keep_web, NOW)
    assert expired(facts("telegram:1", days=31), keep_web, NOW)
    keep_contacts = Limits(web_days=30, contact_days=0)
    assert not expired(facts("telegram:1", days=10_000), keep_contacts, NOW)
    assert keep_contacts.cutoff(Kind.CONTACT, NOW) is None
    assert keep_contacts.dead_letter_cutoff(NOW) is None


def test_a_recent_message_keeps_a_conversation_whose_row_is_old() -> None:
    assert not expired(facts("web:s", days=200, message_days=10), LIMITS, NOW)
    assert expired(facts("web:s", days=200, message_days=100), LIMITS, NOW)
    # And the other way round: a recently touched row with old messages stays too.
    assert not expired(facts("web:s", days=1, message_days=200), LIMITS, NOW)


def test_a_case_still_being_worked_on_is_never_removed() -> None:
    old = facts("sms:+358401234567", days=1000, message_days=1000, active=True)
    assert too_old(old, LIMITS, NOW)
    assert not expired(old, LIMITS, NOW)


def test_select_expired_takes_exactly_the_ones_past_their_limit() -> None:
    given = [
        facts("web:old", days=100, cid="old web"),
        facts("web:young", days=5, cid="young web"),
        facts("sms:+358401234567", days=400, active=True, cid="old contact, open case"),
        facts("sms:+358409999999", days=400, cid="old contact"),
        facts("retained:x", days=ANALYTICS_DAYS + 1, cid="old figures"),
        facts("retained:y", days=100, cid="figures"),
    ]
    assert [f.id for f in select_expired(given, LIMITS, NOW)] == [
        "old web",
        "old contact",
        "old figures",
    ]


def test_figures_are_kept_only_while_the_admin_pages_can_show_them() -> None:
    assert keeps_statistics(facts("web:s", days=100), NOW)
    assert not keeps_statistics(facts("web:s", days=ANALYTICS_DAYS + 1), NOW)
    # A stand-in kept for the figures is not kept again.
    assert not keeps_statistics(facts("retained:x", days=1), NOW)


@given(
    kind=st.sampled_from(["web:s", "sms:+358401234567", "telegram:1", "retained:r"]),
    web=st.integers(0, 2000),
    contact=st.integers(0, 2000),
    updated=st.floats(0, 5000),
    message=st.none() | st.floats(0, 5000),
    active=st.booleans(),
)
def test_expiry_is_age_past_the_limit_of_the_kind_unless_a_case_is_active(
    kind: str, web: int, contact: int, updated: float, message: float | None, active: bool
) -> None:
    limits = Limits(web_days=web, contact_days=contact)
    f = facts(kind, days=updated, message_days=message, active=active)
    days = limits.days(f.kind)
    youngest = min(updated, message) if message is not None else updated
    assert expired(f, limits, NOW) == (
        days > 0 and NOW - timedelta(days=youngest) < NOW - timedelta(days=days) and not active
    )


def test_a_phone_number_is_the_same_resident_on_sms_and_whatsapp() -> None:
    sms = resident_of(Address(channel=Channel.SMS, value="+358401234567"))
    assert sms.contact == "tel:+358401234567"
    assert sms.addresses == {"sms:+358401234567", "whatsapp:+358401234567"}
    email = resident_of(Address(channel=Channel.EMAIL, value="Maija@Example.fi"))
    assert email.contact == "email:maija@example.fi"
    assert email.addresses == {"email:maija@example.fi"}
    web = resident_of(Address(channel=Channel.WEB, value="s3cret"))
    assert web.contact is None
    assert web.addresses == {"web:s3cret"}


def test_addresses_are_read_in_their_typed_form() -> None:
    assert parse_address("sms:+358401234567") == Address(channel=Channel.SMS, value="+358401234567")
    assert str(parse_address("email:Maija@Example.fi")) == "email:maija@example.fi"
    assert str(parse_address("web:abc_DEF-123")) == "web:abc_DEF-123"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("+358401234567", "not an address"),
        ("sms:", "not an address"),
        ("fax:+358401234567", "unknown channel 'fax'"),
        ("sms:+358 40 123", "not an address"),
        ("", "not an address"),
    ],
)
def test_a_malformed_address_is_refused_with_the_form_to_use(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="expected <channel>:<value>") as e:
        parse_address(text)
    assert says in str(e.value)


@given(st.text(max_size=40))
def test_any_text_is_an_address_or_a_clear_refusal(text: str) -> None:
    problem = ""
    try:
        address = parse_address(text)
    except ValueError as e:
        problem = str(e)
    if problem:
        assert "expected <channel>:<value>" in problem
    else:
        assert parse_address(str(address)) == address
