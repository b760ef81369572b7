"""Mail that is never answered: auto-replies, bounces, list mail, our own mail."""

from __future__ import annotations

import pytest

from channels.base import InboundRequest
from channels.email.parse import EmailRules, parse_email
from router.events import DeliveryReported, DeliveryStatus

OURS = "neuvonta@kunta.example"
RULES = EmailRules(own_address=OURS)


def mail(
    headers: dict[str, str] | None = None, body: str = "Hei, milloin kirjasto aukeaa?"
) -> bytes:
    base = {
        "From": "Matti Meikäläinen <matti@example.fi>",
        "To": OURS,
        "Subject": "Kirjasto",
        "Message-ID": "<q1@example.fi>",
    }
    base.update(headers or {})
    lines = [f"{k}: {v}" for k, v in base.items() if v]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def parse(raw: bytes, mail_from: str | None = "matti@example.fi") -> str | None:
    headers = {"mail-from": mail_from} if mail_from is not None else {}
    return parse_email(InboundRequest(body=raw, headers=headers), RULES).ignored


def test_a_person_s_mail_is_answered() -> None:
    assert parse(mail()) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-generated; owner-email=x@y.fi"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"X-Auto-Response-Suppress": "All"},
        {"X-Auto-Response-Suppress": "DR, OOF, AutoReply"},
        {"Precedence": "bulk"},
        {"Precedence": "junk"},
        {"Precedence": "list"},
        {"Precedence": "auto_reply"},
        {"Subject": "Out of Office: Kirjasto"},
        {"Subject": "Automatic reply: Kirjasto"},
        {"Subject": "Automaattinen vastaus: Kirjasto"},
        {"Subject": "Frånvaro: Biblioteket"},
        {"Subject": "Automatiskt svar: Biblioteket"},
        {"Subject": "Re: Poissaoloilmoitus"},
    ],
)
def test_auto_replies_are_not_answered(headers: dict[str, str]) -> None:
    reason = parse(mail(headers))
    assert reason is not None
    assert "auto" in reason or "precedence" in reason


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no"},
        {"Subject": "Out of office hours parking?"},
        {"Subject": "Poissaolo koulusta"},
        {"Precedence": "first-class"},
    ],
)
def test_look_alikes_of_auto_replies_are_answered(headers: dict[str, str]) -> None:
    assert parse(mail(headers)) is None


def test_a_null_envelope_sender_is_a_bounce() -> None:
    assert parse(mail(), mail_from="<>") == "bounce (null envelope sender)"


def test_a_null_return_path_is_a_bounce_for_mailbox_mail() -> None:
    assert parse(mail({"Return-Path": "<>"}), mail_from=None) == "bounce (null envelope sender)"


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@mx.example.fi", "postmaster@example.fi", "Mail Delivery <mailer-daemon@x.fi>"],
)
def test_mailer_daemons_are_bounces(sender: str) -> None:
    assert parse(mail({"From": sender}), mail_from="postmaster@x.fi") == (
        "bounce (mailer-daemon sender)"
    )


def test_a_delivery_report_is_a_bounce() -> None:
    raw = (
        f"From: Mail System <system@mx.example.fi>\r\nTo: {OURS}\r\nSubject: Undelivered\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.fi\r\n\r\nFinal-Recipient: rfc822; x@y.fi\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    ).encode()
    assert parse(raw, mail_from="system@mx.example.fi") == "bounce (delivery report)"


@pytest.mark.parametrize(
    "header",
    [
        {"List-Id": "Kunnan uutiset <uutiset.kunta.example>"},
        {"List-Unsubscribe": "<mailto:unsub@lists.example>"},
        {"List-Post": "<mailto:list@lists.example>"},
    ],
)
def test_mailing_list_mail_is_not_answered(header: dict[str, str]) -> None:
    reason = parse(mail(header))
    assert reason is not None
    assert reason.startswith("mailing list")


def test_our_own_mail_is_not_answered() -> None:
    assert parse(mail({"From": f"Kunta <{OURS.upper()}>"})) == "mail from our own address"
    assert parse(mail({"From": ""}), mail_from=OURS) == "mail from our own address"


def test_x_loop_with_our_address_is_a_loop() -> None:
    assert parse(mail({"X-Loop": OURS})) == "mail loop (x-loop)"


def dsn(original_id: str, action: str = "failed") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.fi>\r\n"
        f"To: {OURS}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.fi\r\n\r\n"
        f"Final-Recipient: rfc822; nobody@example.fi\r\nAction: {action}\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.fi>: user unknown\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {OURS}\r\nTo: nobody@example.fi\r\nMessage-ID: <{original_id}>\r\n"
        "Subject: Re: x\r\n\r\n--b--\r\n"
    ).encode()


def test_a_bounce_of_our_reply_marks_it_undelivered() -> None:
    parsed = parse_email(
        InboundRequest(body=dsn("5f1e.reply@kunta.example"), headers={"mail-from": "<>"}), RULES
    )
    (report,) = parsed.items
    assert isinstance(report, DeliveryReported)
    assert report.provider_message_id == "5f1e.reply@kunta.example"
    assert report.status is DeliveryStatus.UNDELIVERED
    assert report.error is not None
    assert "5.1.1" in report.error
    assert "user unknown" in report.error


@pytest.mark.parametrize(
    ("original", "action"),
    [("someone-else@other.example", "failed"), ("5f1e.reply@kunta.example", "delayed")],
)
def test_other_reports_are_only_ignored(original: str, action: str) -> None:
    parsed = parse_email(
        InboundRequest(body=dsn(original, action), headers={"mail-from": "<>"}), RULES
    )
    assert parsed.items == ()
    assert parsed.ignored == "bounce (null envelope sender)"
