from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from router.events import (
    Address,
    Channel,
    MessageReceived,
    ReplyRequested,
    Role,
    SourceRef,
)

address_values = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
    min_size=1,
    max_size=60,
).filter(lambda v: not any(c.isspace() for c in v))


@given(channel=st.sampled_from(list(Channel)), value=address_values)
def test_address_string_form_round_trips(channel: Channel, value: str) -> None:
    address = Address(channel=channel, value=value)
    assert Address.parse(str(address)) == address


@pytest.mark.parametrize(
    ("text", "channel", "value"),
    [
        ("sms:+358401234567", Channel.SMS, "+358401234567"),
        ("telegram:123456", Channel.TELEGRAM, "123456"),
        ("email:Anna.Virtanen@Example.FI", Channel.EMAIL, "anna.virtanen@example.fi"),
        ("web:abc:def", Channel.WEB, "abc:def"),
    ],
)
def test_address_parse(text: str, channel: Channel, value: str) -> None:
    address = Address.parse(text)
    assert (address.channel, address.value) == (channel, value)


@pytest.mark.parametrize("bad", ["+358401234567", "fax:123", "sms:", "sms:+358 40", "sms: x"])
def test_address_rejects_bad_forms(bad: str) -> None:
    with pytest.raises(ValueError):
        Address.parse(bad)


def test_message_received_json_round_trip_and_keys() -> None:
    event = MessageReceived(
        channel=Channel.SMS,
        provider_message_id="SM123",
        sender="sms:+358401234567",
        text="Hei",
    )
    again = MessageReceived.from_json(event.to_json())
    assert again == event
    assert event.dedup_key == "sms:SM123"
    assert event.thread_key == "sms:+358401234567"
    assert b'"sender":"sms:+358401234567"' in event.to_json()
    assert event.occurred_at.utcoffset() is not None


def test_thread_key_includes_the_thread() -> None:
    event = MessageReceived(
        channel=Channel.EMAIL,
        provider_message_id="<m1@x>",
        sender=Address(channel=Channel.EMAIL, value="a@b.fi"),
        text="x",
        thread="<root@x>",
    )
    assert event.thread_key == "email:a@b.fi#<root@x>"


def test_events_are_frozen_and_strict() -> None:
    event = MessageReceived(
        channel=Channel.WEB,
        provider_message_id="1",
        sender=Address(channel=Channel.WEB, value="s"),
        text="x",
    )
    with pytest.raises(ValidationError):
        event.text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        MessageReceived.model_validate({**event.model_dump(), "sms_segments": 2})


def test_sender_must_be_on_the_messages_channel() -> None:
    with pytest.raises(ValidationError, match="channel"):
        MessageReceived(
            channel=Channel.WEB,
            provider_message_id="1",
            sender=Address(channel=Channel.SMS, value="+358401234567"),
            text="x",
        )


def test_naive_timestamps_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValidationError):
        MessageReceived(
            channel=Channel.WEB,
            provider_message_id="1",
            sender=Address(channel=Channel.WEB, value="s"),
            text="x",
            occurred_at=datetime(2026, 1, 1),
        )


def test_reply_requested_round_trip() -> None:
    reply = ReplyRequested(
        conversation_id="c1",
        message_id="m1",
        channel=Channel.WEB,
        recipient=Address(channel=Channel.WEB, value="s1"),
        role=Role.AI,
        text="Vastaus",
        sources=(SourceRef(doc_id="d1", title="Kirjasto", url=None),),
    )
    assert ReplyRequested.from_json(reply.to_json()) == reply


def test_reply_requested_is_never_from_a_resident() -> None:
    with pytest.raises(ValidationError):
        ReplyRequested(
            message_id="m1",
            channel=Channel.WEB,
            recipient=Address(channel=Channel.WEB, value="s1"),
            role=Role.RESIDENT,
            text="x",
        )
