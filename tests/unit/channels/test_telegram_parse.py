"""Telegram inbound, pure: the secret-token check and an Update's JSON as items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import InboundRequest, Rejected
from channels.telegram.parse import SECRET_HEADER, Greeting, ParsedUpdate, parse_update
from channels.telegram.parse import verify_secret as verify
from router.events import Address, AttachmentRef, Channel, MessageReceived

SECRET = "s3cret-Token_value"


def update(message: dict[str, Any] | None = None, **other: Any) -> bytes:
    body: dict[str, Any] = {"update_id": 9001, **other}
    if message is not None:
        body["message"] = message
    return json.dumps(body).encode()


def message(text: str | None = "Milloin kirjasto on auki?", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "message_id": 17,
        "from": {"id": 4242, "is_bot": False, "first_name": "Aino", "language_code": "fi"},
        "chat": {"id": 4242, "first_name": "Aino", "type": "private"},
        "date": 1_760_000_000,
    }
    if text is not None:
        base["text"] = text
    base.update(fields)
    return base


def received(body: bytes) -> MessageReceived:
    parsed = parse_update(body).parsed
    assert parsed.ignored is None
    (item,) = parsed.items
    assert isinstance(item, MessageReceived)
    return item


def ignored(body: bytes) -> str:
    result = parse_update(body)
    assert result.parsed.items == ()
    assert result.parsed.ignored
    return result.parsed.ignored


# ---- verify ----


def test_the_right_secret_passes() -> None:
    verify(InboundRequest(body=b"{}", headers={SECRET_HEADER: SECRET}), SECRET)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing secret token"),
        ({SECRET_HEADER: ""}, "missing secret token"),
        ({SECRET_HEADER: "guess"}, "wrong secret token"),
        ({SECRET_HEADER: SECRET + "x"}, "wrong secret token"),
        ({SECRET_HEADER: "sécret"}, "wrong secret token"),
    ],
)
def test_a_missing_or_wrong_secret_is_refused_with_403(
    headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(Rejected) as refused:
        verify(InboundRequest(body=b"{}", headers=headers), SECRET)
    assert refused.value.status == 403
    assert refused.value.reason == reason
    assert SECRET not in refused.value.reason


def test_without_a_configured_secret_nothing_passes() -> None:
    with pytest.raises(Rejected) as refused:
        verify(InboundRequest(body=b"{}", headers={SECRET_HEADER: "anything"}), None)
    assert refused.value.status == 403


# ---- messages ----


def test_a_text_message_becomes_a_message_received() -> None:
    item = received(update(message()))
    assert item.channel is Channel.TELEGRAM
    assert item.provider_message_id == "4242:17"
    assert item.dedup_key == "telegram:4242:17"
    assert item.sender == Address(channel=Channel.TELEGRAM, value="4242")
    assert item.text == "Milloin kirjasto on auki?"
    assert item.attachments == ()
    assert item.metadata == {"language_code": "fi", "update_id": "9001"}


def test_without_a_language_code_the_metadata_has_none() -> None:
    msg = message()
    del msg["from"]["language_code"]
    assert received(update(msg)).metadata == {"update_id": "9001"}


def test_a_photo_with_a_caption_keeps_the_caption_and_the_largest_size() -> None:
    msg = message(
        None,
        caption="Tämä kyltti on rikki",
        photo=[
            {"file_id": "a", "file_unique_id": "a", "width": 90, "height": 90, "file_size": 1200},
            {
                "file_id": "b",
                "file_unique_id": "b",
                "width": 800,
                "height": 800,
                "file_size": 81234,
            },
        ],
    )
    item = received(update(msg))
    assert item.text == "Tämä kyltti on rikki"
    assert item.attachments == (
        AttachmentRef(filename="photo.jpg", content_type="image/jpeg", size=81234),
    )


def test_documents_and_voice_messages_are_recorded_as_attachments() -> None:
    doc = {
        "file_id": "d",
        "file_unique_id": "d",
        "file_name": "hakemus.pdf",
        "mime_type": "application/pdf",
        "file_size": 52000,
    }
    item = received(update(message("Liitteenä hakemus", document=doc)))
    assert item.attachments == (
        AttachmentRef(filename="hakemus.pdf", content_type="application/pdf", size=52000),
    )
    voice = {"file_id": "v", "file_unique_id": "v", "duration": 4, "file_size": 9000}
    item = received(update(message(None, voice=voice)))
    assert item.text == ""
    assert item.attachments == (
        AttachmentRef(filename="voice.ogg", content_type="audio/ogg", size=9000),
    )


def test_a_lone_surrogate_does_not_make_an_unpublishable_event() -> None:
    item = received(b'{"update_id": 1, "message": ' + _raw_message(r'"Hei \ud800"') + b"}")
    assert item.text == "Hei ?"
    MessageReceived.from_json(item.to_json())


def _raw_message(text_json: str) -> bytes:
    return (
        b'{"message_id": 1, "chat": {"id": 5, "type": "private"}, "text": '
        + text_json.encode()
        + b"}"
    )


# ---- ignored ----


@pytest.mark.parametrize("chat_type", ["group", "supergroup", "channel"])
def test_only_private_chats_are_residents(chat_type: str) -> None:
    msg = message(chat={"id": -100123, "title": "Kylätoimikunta", "type": chat_type})
    assert ignored(update(msg)) == f"{chat_type} chat: only private chats"


@pytest.mark.parametrize(
    "kind", ["edited_message", "channel_post", "callback_query", "my_chat_member"]
)
def test_other_update_kinds_are_ignored_by_name(kind: str) -> None:
    assert ignored(update(**{kind: {"anything": 1}})) == f"{kind}: not handled"


def test_an_update_of_an_unknown_kind_is_ignored() -> None:
    assert ignored(update(future_kind={})) == "unknown update: not handled"


def test_service_messages_and_messages_without_text_are_ignored() -> None:
    joined = message(None, new_chat_members=[{"id": 1, "is_bot": False, "first_name": "A"}])
    assert ignored(update(joined)) == "service message"
    sticker = {"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "type": "regular"}
    assert ignored(update(message(None, sticker=sticker))).startswith("no text or file")
    assert ignored(update(message("   "))).startswith("no text or file")


def test_a_message_from_a_bot_is_ignored() -> None:
    msg = message()
    msg["from"]["is_bot"] = True
    assert ignored(update(msg)) == "from a bot"


# ---- /start and /help ----


@pytest.mark.parametrize(
    "text", ["/start", "/start kirjasto", "/start@neuvonta_bot", "/help", "/HELP", "/start\nx"]
)
def test_start_and_help_ask_for_a_greeting_instead_of_the_ai(text: str) -> None:
    result = parse_update(update(message(text)))
    assert result == ParsedUpdate(
        result.parsed, 9001, Greeting(chat_id=4242, language="fi", update_id=9001)
    )
    assert result.parsed.items == ()
    assert result.parsed.ignored == "command: greeted"


@pytest.mark.parametrize("text", ["/starting", "kirjoitin /start", "/stop"])
def test_other_text_with_slashes_goes_to_the_ai(text: str) -> None:
    assert received(update(message(text))).text == text


def test_a_greeting_has_no_language_when_telegram_sends_none() -> None:
    msg = message("/start")
    del msg["from"]
    greeting = parse_update(update(msg)).greeting
    assert greeting is not None and greeting.language is None


# ---- malformed ----


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "not a JSON object"),
        (b'"update"', "not a JSON object"),
        (b"{}", "no update_id"),
        (b'{"update_id": "1"}', "no update_id"),
        (b'{"update_id": true}', "no update_id"),
        (b'{"update_id": 1, "message": []}', "message is not an object"),
        (
            b'{"update_id": 1, "message": {"message_id": 1}}',
            "message without chat id or mes",
        ),
        (
            b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}}}',
            "message without chat id or mes",
        ),
    ],
)
def test_malformed_updates_are_rejected_with_400(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_update(body)
    assert refused.value.status == 400
    assert refused.value.reason.startswith(reason)


# ---- property-based: nothing but a result or Rejected ----


def _parse_or_reject(body: bytes) -> None:
    rejected: Rejected | None = None
    try:
        result = parse_update(body)
    except Rejected as e:
        rejected = e
    if rejected is not None:
        assert rejected.status == 400
        return
    for item in result.parsed.items:
        # Whatever is accepted can be published.
        assert isinstance(item, MessageReceived)
        MessageReceived.from_json(item.to_json())


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_anything_but_rejected(body: bytes) -> None:
    _parse_or_reject(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


@given(JSON)
def test_arbitrary_json_never_raises_anything_but_rejected(value: Any) -> None:
    _parse_or_reject(json.dumps(value).encode())


# Update-shaped values with any field of any type, to get past the first checks.
ANY: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.just([]) | st.just({})
)
IDS = st.integers(min_value=-(2**70), max_value=2**70) | ANY
FILE = st.fixed_dictionaries(
    {},
    optional={
        "file_name": st.text(max_size=300) | ANY,
        "mime_type": st.text(max_size=300) | ANY,
        "file_size": IDS,
    },
)
MESSAGE = st.fixed_dictionaries(
    {"message_id": IDS, "chat": st.fixed_dictionaries({"id": IDS, "type": st.just("private")})},
    optional={
        "from": st.fixed_dictionaries(
            {}, optional={"language_code": ANY | st.text(max_size=60), "is_bot": ANY}
        )
        | ANY,
        "text": st.text() | ANY,
        "caption": st.text() | ANY,
        "photo": st.lists(FILE | ANY, max_size=3) | ANY,
        "document": FILE | ANY,
        "voice": FILE | ANY,
        "new_chat_members": ANY,
    },
)


@settings(max_examples=300)
@given(IDS, MESSAGE)
def test_update_shaped_garbage_never_raises_anything_but_rejected(
    update_id: Any, msg: dict[str, Any]
) -> None:
    _parse_or_reject(json.dumps({"update_id": update_id, "message": msg}).encode())
