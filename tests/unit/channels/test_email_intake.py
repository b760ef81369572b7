"""The thread headers kept for replies, and the SMTP answer for each outcome."""

from __future__ import annotations

import pytest

from channels.email.compose import ThreadHeaders
from channels.email.intake import Outcome, Result, thread_headers
from channels.email.smtp_server import smtp_reply
from router.events import MessageReceived


def item(**metadata: str) -> MessageReceived:
    return MessageReceived(
        channel="email",
        provider_message_id="x",
        sender="email:matti@example.fi",
        text="Hei",
        thread="q1@example.fi",
        metadata=metadata,
    )


def test_the_latest_message_is_what_a_reply_answers() -> None:
    got = thread_headers(
        item(message_id="q2@x.fi", references="q1@x.fi r1@k.fi", subject="Kirjasto"), None
    )
    assert got == ThreadHeaders("q2@x.fi", ("q1@x.fi", "r1@k.fi"), "Kirjasto")


def test_in_reply_to_stands_in_for_missing_references() -> None:
    got = thread_headers(item(message_id="q2@x.fi", in_reply_to="q1@x.fi", subject="x"), None)
    assert got.references == ("q1@x.fi",)


def test_what_a_message_lacks_is_kept_from_before() -> None:
    before = ThreadHeaders("q1@x.fi", ("q0@x.fi",), "Kirjasto")
    assert thread_headers(item(subject=""), before) == before


def test_stored_state_of_another_shape_is_read_safely() -> None:
    assert ThreadHeaders.from_state(None) is None
    got = ThreadHeaders.from_state({"message_id": 3, "references": "nope", "subject": None})
    assert got == ThreadHeaders(None, (), "")
    state = ThreadHeaders("a@b", ("c@d",), "s").to_state()
    assert ThreadHeaders.from_state(state) == ThreadHeaders("a@b", ("c@d",), "s")


@pytest.mark.parametrize(
    ("outcome", "reply"),
    [
        (Outcome(Result.ACCEPTED), "250 OK"),
        (Outcome(Result.IGNORED, "auto-reply header"), "250 OK"),
        (Outcome(Result.RETRY, "try again later", 451), "451 4.3.0 Try again later"),
        (Outcome(Result.REJECTED, "message too big (x)", 552), "552 5.3.4 message too big (x)"),
        (
            Outcome(Result.REJECTED, "the message has no text", 550),
            "550 5.6.0 the message has no text",
        ),
        (Outcome(Result.REJECTED, "ääk\r\n550 fake", 550), "550 5.6.0 ??k 550 fake"),
    ],
)
def test_each_outcome_has_its_smtp_answer(outcome: Outcome, reply: str) -> None:
    assert smtp_reply(outcome) == reply
