"""The outbound email of a reply: threading headers, subject, marking, both bodies."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from channels.email.compose import ThreadHeaders, compose_reply, reply_message_id, subject_for
from router.events import ReplyRequested, Role, SourceRef

OURS = "neuvonta@kunta.example"
THREAD = ThreadHeaders(
    message_id="q2@example.fi",
    references=("q1@example.fi", "r1@kunta.example"),
    subject="Kirjaston aukioloajat",
)


def reply(**kw: Any) -> ReplyRequested:
    values: dict[str, Any] = {
        "message_id": "0123abcd",
        "channel": "email",
        "recipient": "email:matti@example.fi",
        "role": Role.AI,
        "text": "Kirjasto on auki arkisin 9–20.\n\nLauantaisin 10–16.\nTervetuloa!",
        "thread": "q1@example.fi",
        "language": "fi",
        "sources": (
            SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib"),
            SourceRef(doc_id="x", title="Aukioloajat <2024>", url="https://kunta.example/auki"),
        ),
    }
    values.update(kw)
    return ReplyRequested.model_validate(values)


def compose(r: ReplyRequested, thread: ThreadHeaders | None = THREAD) -> EmailMessage:
    msg = compose_reply(
        r,
        thread,
        from_address=OURS,
        message_id=reply_message_id(r, "kunta.example"),
        date=datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        public_url="https://neuvonta.kunta.example/",
    )
    # What the recipient gets: the message as bytes, read back.
    back = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(back, EmailMessage)
    return back


def test_threading_headers_follow_the_last_inbound_message() -> None:
    msg = compose(reply())
    assert msg["From"] == OURS
    assert msg["To"] == "matti@example.fi"
    assert msg["In-Reply-To"] == "<q2@example.fi>"
    assert msg["References"].split() == ["<q1@example.fi>", "<r1@kunta.example>", "<q2@example.fi>"]
    assert msg["Message-ID"] == "<0123abcd.reply@kunta.example>"
    assert msg["Date"] == "Sat, 01 Jun 2024 12:00:00 +0000"
    assert msg["Content-Language"] == "fi"


def test_without_stored_headers_the_thread_root_is_answered() -> None:
    msg = compose(reply(), thread=None)
    assert msg["In-Reply-To"] == "<q1@example.fi>"
    assert msg["References"] == "<q1@example.fi>"
    assert msg["Subject"] == "Vastaus viestiisi"


def test_a_hashed_thread_id_is_no_message_id_to_refer_to() -> None:
    msg = compose(reply(thread="sha256:abc"), thread=None)
    assert msg["In-Reply-To"] is None
    assert msg["References"] is None


def test_the_same_reply_gets_the_same_message_id() -> None:
    assert reply_message_id(reply(), "k.fi") == reply_message_id(reply(), "k.fi")
    assert reply_message_id(reply(message_id="a b<c>"), "k.fi").endswith(".reply@k.fi")


@pytest.mark.parametrize(
    ("role", "marked"), [(Role.AI, True), (Role.SYSTEM, True), (Role.AGENT, False)]
)
def test_machine_replies_are_marked_auto_submitted_and_a_person_s_are_not(
    role: Role, marked: bool
) -> None:
    msg = compose(reply(role=role))
    assert (msg["Auto-Submitted"] == "auto-replied") is marked
    assert (msg["Auto-Submitted"] is None) is not marked


def test_the_subject_answers_the_resident_s_with_the_case_number() -> None:
    assert compose(reply(case_number="NV-7K4Q-X2M9"))["Subject"] == (
        "Re: Kirjaston aukioloajat [NV-7K4Q-X2M9]"
    )
    again = ThreadHeaders("q3@x.fi", (), "Kirjaston aukioloajat [NV-7K4Q-X2M9]")
    assert subject_for(reply(case_number="NV-7K4Q-X2M9"), again) == (
        "Re: Kirjaston aukioloajat [NV-7K4Q-X2M9]"
    )
    assert subject_for(reply(case_number=None), THREAD) == "Re: Kirjaston aukioloajat"


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("fi", "Vastaus viestiisi [NV-1]"),
        ("sv", "Svar på ditt meddelande [NV-1]"),
        ("en", "Reply to your message [NV-1]"),
        (None, "Reply to your message [NV-1]"),
    ],
)
def test_without_a_subject_a_default_in_the_reply_s_language(
    language: str | None, subject: str
) -> None:
    assert subject_for(reply(language=language, case_number="NV-1"), None) == subject


def test_plain_and_html_bodies_carry_the_text_and_the_sources() -> None:
    msg = compose(reply())
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    text = plain.get_content()
    assert text.startswith("Kirjasto on auki arkisin 9–20.\n\nLauantaisin 10–16.\nTervetuloa!")
    assert "Lähteet:\nKirjastopalvelut: https://neuvonta.kunta.example/kb/lib\n" in text
    assert "Aukioloajat <2024>: https://kunta.example/auki" in text
    markup = html.get_content()
    assert "<p>Kirjasto on auki arkisin 9–20.</p>" in markup
    assert "<p>Lauantaisin 10–16.<br>\nTervetuloa!</p>" in markup
    assert '<a href="https://neuvonta.kunta.example/kb/lib">Kirjastopalvelut</a>' in markup
    assert '<a href="https://kunta.example/auki">Aukioloajat &lt;2024&gt;</a>' in markup
    assert '<html lang="fi">' in markup


def test_html_escapes_the_text_and_links_its_addresses() -> None:
    msg = compose(reply(text="Katso <b>tämä</b>: https://kunta.example/a?x=1&y=2.", sources=()))
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    markup = html.get_content()
    assert "&lt;b&gt;tämä&lt;/b&gt;" in markup
    assert (
        '<a href="https://kunta.example/a?x=1&amp;y=2">https://kunta.example/a?x=1&amp;y=2</a>.'
        in markup
    )
    plain = msg.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Lähteet" not in plain.get_content()


def test_a_long_thread_keeps_its_root_and_latest_references() -> None:
    refs = tuple(f"m{i}@x.fi" for i in range(30))
    msg = compose(reply(), ThreadHeaders("last@x.fi", refs, "x"))
    got = msg["References"].split()
    assert got[0] == "<m0@x.fi>"
    assert got[-1] == "<last@x.fi>"
    assert len(got) == 10
