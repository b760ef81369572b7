from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import subjects
from router.events import (
    Address,
    Channel,
    DeadLettered,
    HandoffRequested,
    HandoffResolved,
    MessageReceived,
    ReplyFailed,
    ReplyRequested,
    ReplySent,
    Role,
)


def test_subject_builders() -> None:
    assert subjects.message_received(Channel.SMS) == "neuvonta.v1.message.received.sms"
    assert subjects.reply_requested(Channel.WEB) == "neuvonta.v1.reply.requested.web"
    assert subjects.reply_sent(Channel.EMAIL) == "neuvonta.v1.reply.sent.email"
    assert subjects.reply_failed(Channel.TELEGRAM) == "neuvonta.v1.reply.failed.telegram"
    assert subjects.handoff_requested("health") == "neuvonta.v1.handoff.requested.health"
    assert subjects.handoff_assigned("health") == "neuvonta.v1.handoff.assigned.health"
    assert subjects.handoff_resolved("early-education") == (
        "neuvonta.v1.handoff.resolved.early-education"
    )


@pytest.mark.parametrize("bad", ["", "Health", "a.b", "a*", ">", "a b", "-x", "x" * 64])
def test_queue_tokens_cannot_break_subjects(bad: str) -> None:
    with pytest.raises(ValueError, match="queue"):
        subjects.handoff_requested(bad)


@given(st.text(max_size=70))
def test_a_valid_queue_token_is_one_subject_token(queue: str) -> None:
    try:
        subject = subjects.handoff_requested(queue)
    except ValueError:
        return
    assert subject.split(".")[-1] == queue
    assert not set(queue) & {".", "*", ">", " "}


def test_every_subject_falls_in_exactly_one_stream() -> None:
    def streams_of(subject: str) -> list[subjects.Stream]:
        found = []
        for stream, patterns in subjects.STREAM_SUBJECTS.items():
            for p in patterns:
                prefix = p.rstrip(">").rstrip("*")
                if subject.startswith(prefix):
                    found.append(stream)
        return found

    web = Address(channel=Channel.WEB, value="s")
    events = [
        MessageReceived(channel=Channel.WEB, provider_message_id="1", sender=web, text="x"),
        ReplyRequested(message_id="m", channel=Channel.WEB, recipient=web, role=Role.AI, text="x"),
        ReplySent(message_id="m", channel=Channel.WEB),
        ReplyFailed(message_id="m", channel=Channel.WEB, error="x", attempts=3),
        HandoffRequested(ticket_id=1, case_number="NV-1", queue="general", reason="urgent"),
        HandoffResolved(ticket_id=1, case_number="NV-1", queue="general", resolved_by="a"),
        DeadLettered(
            stream="NEUVONTA_CONVERSATIONS",
            stream_seq=1,
            subject="s",
            error="e",
            deliveries=1,
            payload="{}",
        ),
    ]
    for event in events:
        assert len(streams_of(subjects.subject_for(event))) == 1, event


def test_message_ids_make_republishing_idempotent() -> None:
    web = Address(channel=Channel.WEB, value="s")
    a = ReplyRequested(message_id="m", channel=Channel.WEB, recipient=web, role=Role.AI, text="x")
    b = ReplyRequested(message_id="m", channel=Channel.WEB, recipient=web, role=Role.AI, text="x")
    assert a.event_id != b.event_id
    assert subjects.msg_id_for(a) == subjects.msg_id_for(b)
    inbound = MessageReceived(channel=Channel.WEB, provider_message_id="p1", sender=web, text="x")
    assert subjects.msg_id_for(inbound) == "web:p1"


def test_channel_of_subject() -> None:
    assert subjects.channel_of(subjects.reply_requested(Channel.SMS)) is Channel.SMS
