"""An inbound email's bytes → the resident's message (text, attachments, thread)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import InboundRequest, Rejected
from channels.email.parse import EmailRules, parse_email
from router.events import Channel, DeliveryReported, MessageReceived

OURS = "neuvonta@kunta.example"
RULES = EmailRules(own_address=OURS, max_bytes=64 * 1024)
ENVELOPE = {"mail-from": "matti@example.fi", "rcpt-to": OURS}


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Matti Meikäläinen <Matti@Example.FI>")
    msg["To"] = OURS
    msg["Subject"] = headers.pop("Subject", "Kirjaston aukioloajat")
    msg["Message-ID"] = headers.pop("Message_ID", "<q1@example.fi>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def received(raw: bytes | EmailMessage, headers: dict[str, str] | None = None) -> MessageReceived:
    body = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
    parsed = parse_email(InboundRequest(body=body, headers=headers or ENVELOPE), RULES)
    assert parsed.ignored is None
    (item,) = parsed.items
    assert isinstance(item, MessageReceived)
    return item


def test_a_plain_mail_becomes_a_message() -> None:
    msg = message()
    msg.set_content(
        "Hei,\n\nmilloin kirjasto on auki?\n\n-- \nMatti\n\n"
        "ma 1.1.2024 klo 10.00 Kunta kirjoitti:\n> vanha\n"
    )
    item = received(msg)
    assert item.channel is Channel.EMAIL
    assert str(item.sender) == "email:matti@example.fi"
    assert item.text == "Hei,\n\nmilloin kirjasto on auki?"
    assert item.full_text is not None
    assert "> vanha" in item.full_text
    assert "-- \nMatti" in item.full_text
    assert item.provider_message_id == "q1@example.fi"
    assert item.thread == "q1@example.fi"
    assert item.metadata["subject"] == "Kirjaston aukioloajat"
    assert item.metadata["message_id"] == "q1@example.fi"


def test_the_same_mail_gets_the_same_ids() -> None:
    msg = message()
    msg.set_content("Hei")
    a, b = received(msg), received(msg)
    assert (a.message_id, a.dedup_key) == (b.message_id, b.dedup_key)


def test_a_reply_joins_the_thread_of_its_root() -> None:
    msg = message(
        Message_ID="<q3@example.fi>",
        In_Reply_To="<r2@kunta.example>",
        References="<q1@example.fi> <r1@kunta.example>      <r2@kunta.example>",
        Subject="Re: SV: Vs: Kirjaston aukioloajat [NV-7K4Q-X2M9]",
    )
    msg.set_content("Kiitos!")
    item = received(msg)
    assert item.thread == "q1@example.fi"
    assert item.metadata["subject"] == "Kirjaston aukioloajat [NV-7K4Q-X2M9]"
    assert item.metadata["case_number"] == "NV-7K4Q-X2M9"
    assert item.metadata["references"] == "q1@example.fi r1@kunta.example r2@kunta.example"


def test_in_reply_to_alone_names_the_thread() -> None:
    msg = message(Message_ID="<q2@example.fi>", In_Reply_To="<q1@example.fi>")
    msg.set_content("Lisäkysymys")
    assert received(msg).thread == "q1@example.fi"


def test_without_message_id_the_bytes_make_a_stable_id() -> None:
    raw = b"From: matti@example.fi\r\nSubject: x\r\n\r\nHei\r\n"
    a, b = received(raw), received(raw)
    assert a.provider_message_id == b.provider_message_id
    assert a.provider_message_id.startswith("sha256:")
    assert a.thread == a.provider_message_id
    assert "message_id" not in a.metadata


def test_html_only_mail_is_read_as_text() -> None:
    msg = message()
    msg.set_content(
        "<p>Hei,</p><p>missä on <a href='https://kunta.example/jate'>jäteasema</a>?</p>"
        "<blockquote>vanha</blockquote>",
        subtype="html",
    )
    item = received(msg)
    assert item.text == "Hei,\n\nmissä on jäteasema (https://kunta.example/jate)?"


def test_the_plain_alternative_is_preferred_and_attachments_are_metadata() -> None:
    msg = message()
    msg.set_content("Liitteenä hakemus.")
    msg.add_alternative("<p>Liitteenä <b>hakemus</b>.</p>", subtype="html")
    msg.add_attachment(
        b"%PDF-1.4 " + b"x" * 991, maintype="application", subtype="pdf", filename="hakemus.pdf"
    )
    msg.add_attachment(
        b"\x89PNG" + b"y" * 96, maintype="image", subtype="png", filename="kuva ä.png"
    )
    item = received(msg)
    assert item.text == "Liitteenä hakemus."
    assert [(a.filename, a.content_type, a.size) for a in item.attachments] == [
        ("hakemus.pdf", "application/pdf", 1000),
        ("kuva ä.png", "image/png", 100),
    ]


def test_a_forwarded_mail_attached_is_an_attachment_not_the_text() -> None:
    inner = message(Subject="Alkuperäinen", Message_ID="<inner@x.fi>")
    inner.set_content("sisempi teksti")
    msg = message()
    msg.set_content("Katso liite.")
    msg.add_attachment(inner)
    item = received(msg)
    assert item.text == "Katso liite."
    assert [a.content_type for a in item.attachments] == ["message/rfc822"]


def test_odd_charsets_are_read_best_effort() -> None:
    latin = (
        b"From: matti@example.fi\r\nSubject: =?iso-8859-1?q?P=E4iv=E4koti?=\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nP\xe4iv\xe4kotipaikka?\r\n"
    )
    item = received(latin)
    assert item.text == "Päiväkotipaikka?"
    assert item.metadata["subject"] == "Päiväkoti"
    unknown = (
        b"From: matti@example.fi\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
        b"Hyv\xc3\xa4\xc3\xa4 p\xc3\xa4iv\xc3\xa4\xc3\xa4\r\n"
    )
    assert received(unknown).text == "Hyvää päivää"
    undeclared = b"From: matti@example.fi\r\n\r\nP\xe4iv\xe4\xff\r\n"
    assert received(undeclared).text == "Päiväÿ"
    not_text = b"From: matti@example.fi\r\nContent-Type: text/plain; charset=base64\r\n\r\nhei\r\n"
    assert received(not_text).text == "hei"


def test_8bit_headers_are_read_as_utf8() -> None:
    raw = "From: Mätti <matti@example.fi>\r\nSubject: Päivä\x00koti\r\n\r\nHei\r\n".encode()
    item = received(raw)
    assert item.metadata["subject"] == "Päiväkoti"


def test_broken_mime_is_read_best_effort() -> None:
    no_boundary = (
        b"From: matti@example.fi\r\nMessage-ID: <b@x.fi>\r\nContent-Type: multipart/mixed\r\n\r\n"
        b"Teksti ilman rajoja\r\n"
    )
    assert received(no_boundary).text == "Teksti ilman rajoja"
    bad_base64 = (
        b"From: matti@example.fi\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nSGVp!!!bG9\r\n"
    )
    assert isinstance(received(bad_base64).text, str)
    unterminated = (
        b'From: matti@example.fi\r\nContent-Type: multipart/alternative; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nkesken"
    )
    assert received(unterminated).text == "kesken"


def test_the_envelope_sender_stands_in_for_a_missing_from() -> None:
    raw = b"Subject: Kysymys\r\n\r\nHei\r\n"
    assert str(received(raw, {"mail-from": "Anna@Example.SE"}).sender) == "email:anna@example.se"


def test_no_sender_at_all_is_refused() -> None:
    with pytest.raises(Rejected) as e:
        parse_email(InboundRequest(body=b"Subject: x\r\n\r\nHei\r\n"), RULES)
    assert e.value.status == 550
    assert "sender" in e.value.reason


def test_an_empty_mail_is_refused_and_a_subject_only_mail_is_read() -> None:
    with pytest.raises(Rejected) as e:
        parse_email(InboundRequest(body=b"From: matti@example.fi\r\n\r\n"), RULES)
    assert e.value.reason == "the message has no text"
    assert received(b"From: matti@example.fi\r\nSubject: Aukioloajat?\r\n\r\n").text == (
        "Aukioloajat?"
    )


def test_a_too_big_mail_is_refused_with_552() -> None:
    with pytest.raises(Rejected) as e:
        parse_email(InboundRequest(body=b"x" * (RULES.max_bytes + 1)), RULES)
    assert e.value.status == 552
    assert "too big" in e.value.reason


def test_long_texts_are_capped() -> None:
    rules = EmailRules(own_address=OURS, max_bytes=10**6, max_text_chars=50)
    msg = message()
    msg.set_content("sana " * 10_000)
    item = parse_email(InboundRequest(body=msg.as_bytes()), rules).items[0]
    assert isinstance(item, MessageReceived)
    assert len(item.text) == 50


# ---- properties: whatever arrives, a result or a Rejected ------------------------------------


def _parse_or_reject(raw: bytes, headers: dict[str, str]) -> None:
    try:
        parsed = parse_email(InboundRequest(body=raw, headers=headers), RULES)
    except Rejected as e:
        refused = e
    else:
        assert parsed.ignored or parsed.items
        for item in parsed.items:
            assert isinstance(item, MessageReceived | DeliveryReported)
            item.to_json()  # publishable as it is
        return
    assert refused.status in (550, 552)
    assert refused.reason


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.sampled_from([{}, ENVELOPE, {"mail-from": "<>"}]))
def test_arbitrary_bytes_parse_or_are_rejected(raw: bytes, headers: dict[str, str]) -> None:
    _parse_or_reject(raw, headers)


_HEADER_NAMES = st.sampled_from(
    [
        "From", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
        "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version", "Auto-Submitted",
        "List-Id", "Precedence", "Return-Path", "X-Weird",
    ]
)  # fmt: skip
_HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "matti@example.fi", "<a@b.fi>", "<>", "=?utf-8?q?M=C3=A4tti?= <m@x.fi>",
            "=?x-bogus?b?!!!?=", "multipart/mixed", 'multipart/alternative; boundary="b"',
            "text/plain; charset=x-unknown", "text/html; charset=utf-8", "base64",
            "quoted-printable", "8bit", "attachment; filename*=utf-8''%E4%E4.pdf",
            'attachment; filename="a.txt"', "message/rfc822", "multipart/report", "<<<>>>",
            "a@b, c@d", "\"unterminated <x@y.fi>", "no", "message/delivery-status",
            'multipart/report; boundary="b"', "text/rfc822-headers", "MAILER-DAEMON@x.fi",
        ]
    ),
)  # fmt: skip
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"--b\r\nContent-Type: text/plain\r\n\r\nhei\r\n--b--\r\n",
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>hei<blockquote>x</p>\r\n--b",
            b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\ny\r\n--b--",
            b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
            b"Status: 5.0.0\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            b"Message-ID: <1.reply@kunta.example>\r\n--b--",
            b"SGVp!!!=\r\n",
            b"=E4=E4=\r\n=ZZ",
            b"\xff\xfe\x00h\x00e\x00i",
        ]
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=10),
    _BODIES,
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from([{}, ENVELOPE, {"mail-from": "<>"}]),
)
def test_built_mixtures_of_headers_and_bodies_parse_or_are_rejected(
    headers: list[tuple[str, str]], body: bytes, newline: str, envelope: dict[str, str]
) -> None:
    head = "".join(f"{k}: {v}{newline}" for k, v in headers)
    raw = head.encode("utf-8", "surrogatepass") + newline.encode() + body
    _parse_or_reject(raw, envelope)
