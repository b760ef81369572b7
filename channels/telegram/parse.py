"""Telegram inbound, pure: the webhook's secret-token check and an Update's JSON as items.

Only private chats are residents: a group, supergroup or channel is not one person, and
an answer there would be read by everyone in it. ``/start`` and ``/help`` are not for the
AI: they come back as a ``Greeting`` the adapter sends itself (``channels.telegram.greeting``).
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from channels.base import InboundRequest, Parsed, Rejected
from router.events import Address, AttachmentRef, Channel, MessageReceived

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)

# Telegram's ids fit in a signed 64-bit integer; anything else is not from Telegram.
_MAX_ID = 2**63
_COMMAND = re.compile(r"^/(start|help)(?:@\w+)?(?:\s|$)", re.IGNORECASE)

# Update kinds that are not a resident's new message; named so the log says which.
_OTHER_KINDS = (
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
)
# Message fields that make it a service message (someone joined, a pin, a title change).
_SERVICE = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "users_shared",
    "chat_shared",
    "write_access_allowed",
    "forum_topic_created",
    "video_chat_started",
    "video_chat_ended",
)
# File kinds recorded as attachments: (field, default content type, default file name).
_FILES = (
    ("document", "application/octet-stream", "document"),
    ("audio", "audio/mpeg", "audio"),
    ("voice", "audio/ogg", "voice.ogg"),
    ("video", "video/mp4", "video.mp4"),
    ("video_note", "video/mp4", "video_note.mp4"),
    ("animation", "video/mp4", "animation.mp4"),
)


@dataclass(frozen=True, slots=True)
class Greeting:
    """``/start`` or ``/help`` in a private chat: greet in the resident's language."""

    chat_id: int
    language: str | None
    update_id: int


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    parsed: Parsed
    update_id: int
    greeting: Greeting | None = None


def verify_secret(request: InboundRequest, secret: str | None) -> None:
    """Telegram sends the secret given to ``setWebhook`` in a header; compare it in
    constant time. Without a configured secret nothing is accepted."""
    given = request.headers.get(SECRET_HEADER)
    if not given:
        raise Rejected("missing secret token", status=403)
    if secret is None or not hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass")
    ):
        raise Rejected("wrong secret token", status=403)


def parse_update(body: bytes) -> ParsedUpdate:
    """One Update's JSON as items; ``Rejected`` (400) when it is not an Update."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        # ValueError covers bad JSON, bad UTF-8 and integers too long to convert.
        raise Rejected("not JSON") from e
    if not isinstance(data, dict):
        raise Rejected("not a JSON object")
    update_id = _id(data.get("update_id"))
    if update_id is None:
        raise Rejected("no update_id")
    message = data.get("message")
    if message is None:
        kind = next((k for k in _OTHER_KINDS if k in data), None)
        return ParsedUpdate(Parsed(ignored=f"{kind or 'unknown update'}: not handled"), update_id)
    if not isinstance(message, dict):
        raise Rejected("message is not an object")
    return _message(message, update_id)


def _message(message: dict[str, Any], update_id: int) -> ParsedUpdate:
    chat = message.get("chat")
    chat_id = _id(chat.get("id")) if isinstance(chat, dict) else None
    message_id = _id(message.get("message_id"))
    if chat_id is None or message_id is None or not isinstance(chat, dict):
        raise Rejected("message without chat id or message id")

    def ignored(reason: str) -> ParsedUpdate:
        return ParsedUpdate(Parsed(ignored=reason), update_id)

    if chat.get("type") != "private":
        return ignored(f"{_text(chat.get('type')) or 'unknown'} chat: only private chats")
    sender = message.get("from")
    sender = sender if isinstance(sender, dict) else {}
    if sender.get("is_bot") is True:
        return ignored("from a bot")
    # Truthy, not present: python-telegram-bot's to_dict() writes the flags as False.
    if any(message.get(k) for k in _SERVICE):
        return ignored("service message")
    language = _text(sender.get("language_code"))[:35] or None

    text = _text(message.get("text")) or _text(message.get("caption"))
    if _COMMAND.match(text):
        greeting = Greeting(chat_id=chat_id, language=language, update_id=update_id)
        return ParsedUpdate(Parsed(ignored="command: greeted"), update_id, greeting)
    attachments = _attachments(message)
    if not text.strip() and not attachments:
        return ignored("no text or file (a sticker, location, contact, poll …)")

    metadata = {"update_id": str(update_id)}
    if language:
        metadata["language_code"] = language
    try:
        item = MessageReceived(
            channel=Channel.TELEGRAM,
            provider_message_id=f"{chat_id}:{message_id}",
            sender=Address(channel=Channel.TELEGRAM, value=str(chat_id)),
            text=text,
            attachments=attachments,
            metadata=metadata,
        )
    except ValidationError as e:
        raise Rejected(f"unusable message: {e.error_count()} invalid fields") from e
    return ParsedUpdate(Parsed(items=(item,)), update_id)


def _attachments(message: dict[str, Any]) -> tuple[AttachmentRef, ...]:
    found: list[AttachmentRef] = []
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        # Telegram sends one photo in several sizes, smallest first: it is one file.
        largest = photo[-1] if isinstance(photo[-1], dict) else {}
        found.append(_attachment(largest, "image/jpeg", "photo.jpg"))
    for field, content_type, name in _FILES:
        value = message.get(field)
        if isinstance(value, dict):
            found.append(_attachment(value, content_type, name))
    return tuple(found)


def _attachment(file: dict[str, Any], content_type: str, name: str) -> AttachmentRef:
    size = file.get("file_size")
    return AttachmentRef(
        filename=(_text(file.get("file_name")) or name)[:255],
        content_type=(_text(file.get("mime_type")) or content_type)[:255],
        size=size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else 0,
    )


def _id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -_MAX_ID < value < _MAX_ID:
        return value
    return None


def _text(value: Any) -> str:
    """A string field, with lone surrogates (valid JSON, unencodable) replaced."""
    if not isinstance(value, str):
        return ""
    return value.encode("utf-8", "replace").decode("utf-8")
