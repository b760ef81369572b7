"""Twilio webhook forms as inbound items, and garbage as clear rejections."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import InboundRequest, OptOut, Parsed, Rejected
from channels.sms import TwilioAdapter
from router.events import (
    Address,
    AttachmentRef,
    Channel,
    DeliveryReported,
    DeliveryStatus,
    MessageReceived,
)
from tests.fakes.twilio_server import inbound_sms, new_sid, status_callback

BASE = "https://neuvonta.kunta.example"
MESSAGES = f"{BASE}/webhooks/twilio"
STATUS = f"{BASE}/webhooks/twilio/status"
NUMBER = "+358401234567"
TWILIO = TwilioAdapter("AC" + "0" * 32, "token", "+358451234567", public_url=BASE)


def parse(form: dict[str, str] | list[tuple[str, str]], url: str = MESSAGES) -> Parsed:
    return TWILIO.parse(InboundRequest(body=urlencode(form).encode(), url=url))


def outcome(body: bytes, url: str) -> Parsed | Rejected:
    """What parsing ``body`` gives: the items, or the rejection (never another exception)."""
    try:
        return TWILIO.parse(InboundRequest(body=body, url=url))
    except Rejected as e:
        return e


def only(parsed: Parsed) -> object:
    assert len(parsed.items) == 1, parsed
    return parsed.items[0]


def test_an_sms_is_a_message_from_the_number() -> None:
    sid = new_sid()
    message = only(parse(inbound_sms(sid, NUMBER, "Milloin kirjasto on auki?")))
    assert isinstance(message, MessageReceived)
    assert message.channel is Channel.SMS
    assert message.provider_message_id == sid
    assert message.dedup_key == f"sms:{sid}"
    assert message.sender == Address(channel=Channel.SMS, value=NUMBER)
    assert message.text == "Milloin kirjasto on auki?"
    assert message.metadata["to"] == "+358451234567"
    assert message.attachments == ()


def test_a_whatsapp_message_is_on_whatsapp_from_the_same_number() -> None:
    form = inbound_sms(
        new_sid(), f"whatsapp:{NUMBER}", "Hei", to="whatsapp:+358451234567", ProfileName="Aino"
    )
    message = only(parse(form))
    assert isinstance(message, MessageReceived)
    assert message.channel is Channel.WHATSAPP
    assert message.sender == Address(channel=Channel.WHATSAPP, value=NUMBER)
    assert message.metadata["profile_name"] == "Aino"


def test_pictures_are_recorded_as_attachment_metadata() -> None:
    form = inbound_sms(
        new_sid(),
        NUMBER,
        "",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        MediaContentType1="application/pdf",
    )
    message = only(parse(form))
    assert isinstance(message, MessageReceived)
    assert message.text == ""
    assert message.attachments == (
        AttachmentRef(filename="ME1", content_type="image/jpeg"),
        AttachmentRef(filename="ME2", content_type="application/pdf"),
    )
    assert message.metadata["media_url_1"].endswith("/Media/ME2")


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "cancel", "END", "quit", "STOP."]
)
def test_stop_words_are_an_opt_out_and_no_message(word: str) -> None:
    sid = new_sid()
    opt = only(parse(inbound_sms(sid, NUMBER, word)))
    assert opt == OptOut(
        address=Address(channel=Channel.SMS, value=NUMBER), opted_out=True, provider_message_id=sid
    )


@pytest.mark.parametrize("word", ["START", "start", "Unstop"])
def test_start_words_are_an_opt_in(word: str) -> None:
    opt = only(parse(inbound_sms(new_sid(), f"whatsapp:{NUMBER}", word)))
    assert isinstance(opt, OptOut)
    assert not opt.opted_out
    assert opt.address == Address(channel=Channel.WHATSAPP, value=NUMBER)


def test_yes_is_an_opt_in_and_still_an_answer_for_the_conversation() -> None:
    sid = new_sid()
    opt, message = parse(inbound_sms(sid, NUMBER, "Yes")).items
    assert isinstance(opt, OptOut) and not opt.opted_out
    assert isinstance(message, MessageReceived)
    assert (message.text, message.provider_message_id) == ("Yes", sid)


def test_twilio_opt_out_type_decides_over_the_words() -> None:
    opt = only(parse(inbound_sms(new_sid(), NUMBER, "lopeta", OptOutType="STOP")))
    assert isinstance(opt, OptOut) and opt.opted_out
    assert parse(inbound_sms(new_sid(), NUMBER, "HELP", OptOutType="HELP")).items == ()


def test_a_sentence_with_stop_in_it_is_a_message() -> None:
    message = only(parse(inbound_sms(new_sid(), NUMBER, "Stop the noise at the park please")))
    assert isinstance(message, MessageReceived)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", DeliveryStatus.QUEUED),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("failed", DeliveryStatus.FAILED),
        ("undelivered", DeliveryStatus.UNDELIVERED),
    ],
)
def test_status_callbacks_are_delivery_reports(status: str, expected: DeliveryStatus) -> None:
    sid = new_sid()
    report = only(parse(status_callback(sid, status), url=STATUS))
    assert isinstance(report, DeliveryReported)
    assert (report.channel, report.provider_message_id) == (Channel.SMS, sid)
    assert report.status is expected
    assert report.error is None


def test_a_failed_delivery_says_why_and_whatsapp_is_recognised() -> None:
    form = status_callback(new_sid(), "undelivered", to=f"whatsapp:{NUMBER}", ErrorCode="30003")
    report = only(parse(form, url=STATUS))
    assert isinstance(report, DeliveryReported)
    assert report.channel is Channel.WHATSAPP
    assert report.error == "Twilio error 30003: unreachable destination handset"


@pytest.mark.parametrize("status", ["accepted", "sending", "scheduled", "canceled", "receiving"])
def test_intermediate_statuses_are_ignored_with_a_reason(status: str) -> None:
    parsed = parse(status_callback(new_sid(), status), url=STATUS)
    assert parsed.items == ()
    assert parsed.ignored == f"status {status!r} is not recorded"


def test_a_status_callback_on_the_message_url_is_still_a_report() -> None:
    assert isinstance(only(parse(status_callback(new_sid(), "sent"))), DeliveryReported)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "missing MessageSid"),
        (b"MessageSid=SM1&Body=hi", "missing From"),
        (b"MessageSid=SM1&From=%2B358401234567", "missing Body"),
        (b"From=%2B358401234567&Body=hi", "missing MessageSid"),
        (
            b"MessageSid=SM%20x&From=%2B358401234567&Body=hi",
            "MessageSid is not a Twilio message SID",
        ),
        (b"MessageSid=SM1&From=%2B358%2040&Body=hi", "not a phone number: '+358 40'"),
        (b"MessageSid=SM1&From=messenger%3A1&Body=hi", "not an SMS or WhatsApp address"),
        (b"MessageSid=SM1&From=%2B3584&Body=hi&NumMedia=x", "NumMedia is not a number"),
        (b"MessageSid=SM1&MessageSid=SM2&From=%2B3584&Body=hi", "appears twice"),
        (b"MessageSid=SM1&&From=%2B3584", "bad form data"),
        (b"MessageSid", "bad form data"),
        (b"Body=%ff%fe&MessageSid=SM1&From=%2B3584", "bad form data"),
        (b"Body=\xff&MessageSid=SM1&From=%2B3584", "bad form data"),
    ],
)
def test_malformed_forms_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as e:
        TWILIO.parse(InboundRequest(body=body, url=MESSAGES))
    assert e.value.status == 400
    assert reason in e.value.reason


def test_a_status_callback_without_a_status_is_rejected() -> None:
    with pytest.raises(Rejected, match="missing MessageStatus"):
        parse({"MessageSid": new_sid()}, url=STATUS)


field_names = st.sampled_from(
    [
        "MessageSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "OptOutType",
        "MessageStatus",
        "SmsStatus",
        "ErrorCode",
        "ProfileName",
    ]
) | st.text(max_size=10)
field_values = st.sampled_from(
    [
        "SM" + "a" * 32,
        NUMBER,
        f"whatsapp:{NUMBER}",
        "STOP",
        "START",
        "1",
        "11",
        "-1",
        "delivered",
        "failed",
        "30003",
        "",
        "image/png",
        "https://x.example/ME1",
    ]
) | st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(field_names, field_values), max_size=14), st.booleans())
def test_any_form_is_items_or_a_rejection(fields: list[tuple[str, str]], status: bool) -> None:
    result = outcome(urlencode(fields).encode(), STATUS if status else MESSAGES)
    if isinstance(result, Rejected):
        assert result.status == 400
        assert result.reason
        return
    assert result.items or result.ignored
    for item in result.items:
        assert isinstance(item, MessageReceived | DeliveryReported | OptOut)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_are_items_or_a_rejection(body: bytes, status: bool) -> None:
    result = outcome(body, STATUS if status else MESSAGES)
    assert isinstance(result, Parsed) or result.status == 400


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_from_a_resident_is_a_message_or_an_opt_change(text: str) -> None:
    items = parse(inbound_sms(new_sid(), NUMBER, text)).items
    assert items
    for item in items:
        if isinstance(item, MessageReceived):
            assert item.text == text
        else:
            assert isinstance(item, OptOut)
