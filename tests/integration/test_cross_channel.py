"""The same resident across channels: one conversation, replies where they last wrote."""

from __future__ import annotations

from pathlib import Path

from router.events import Address, AttachmentRef, Channel, MessageReceived, ReplyRequested
from router.subjects import ALL_REPLIES_REQUESTED
from tests.integration.harness import (
    answering,
    collect,
    eventually,
    make_settings,
    rows,
    services,
    worker,
)

NUMBER = "+358401234567"
PHOTO = AttachmentRef(filename="kuva.jpg", content_type="image/jpeg", size=12)


def message(channel: Channel, value: str, text: str, pid: str, **kw: object) -> MessageReceived:
    return MessageReceived.model_validate(
        {
            "channel": channel,
            "provider_message_id": pid,
            "sender": Address(channel=channel, value=value),
            "text": text,
            **kw,
        }
    )


async def test_sms_then_whatsapp_from_one_number_is_one_conversation_answered_on_whatsapp(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, ALL_REPLIES_REQUESTED, ReplyRequested)
        async with worker(svc, answering()):
            await svc.publisher.publish(message(Channel.SMS, NUMBER, "Kirjasto?", "SM1"))
            await eventually(lambda: _n(replies, 1), what="the SMS reply")
            await svc.publisher.publish(message(Channel.WHATSAPP, NUMBER, "Entä sunnuntai?", "WA1"))
            await eventually(lambda: _n(replies, 2), what="the WhatsApp reply")
        first, second = replies
        assert first.channel is Channel.SMS
        assert second.channel is Channel.WHATSAPP
        assert second.recipient == Address(channel=Channel.WHATSAPP, value=NUMBER)
        assert first.conversation_id == second.conversation_id
        (conversation,) = await rows(svc, "conversation")
        assert conversation["channel"] == "whatsapp"
        assert conversation["contact"] == f"tel:{NUMBER}"
        channels = [m["channel"] for m in await rows(svc, "message", role="resident")]
        assert sorted(channels) == ["sms", "whatsapp"]


async def test_a_new_email_thread_continues_the_conversation_and_replies_in_that_thread(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, ALL_REPLIES_REQUESTED, ReplyRequested)
        async with worker(svc, answering()):
            await svc.publisher.publish(
                message(Channel.EMAIL, "Maija@Example.FI", "Kirjasto?", "a@x", thread="a@x")
            )
            await eventually(lambda: _n(replies, 1), what="the first reply")
            await svc.publisher.publish(
                message(
                    Channel.EMAIL,
                    "maija@example.fi",
                    "Vielä yksi kysymys",
                    "b@x",
                    thread="b@x",
                    full_text="Vielä yksi kysymys\n\n> Kirjasto?",
                    attachments=[PHOTO],
                )
            )
            await eventually(lambda: _n(replies, 2), what="the second reply")
        assert replies[0].thread == "a@x"
        assert replies[1].thread == "b@x"
        assert replies[0].conversation_id == replies[1].conversation_id
        stored = {m["text"]: m for m in await rows(svc, "message", role="resident")}
        second = stored["Vielä yksi kysymys"]
        assert second["full_text"].endswith("> Kirjasto?")
        assert second["attachments"] == [
            {"filename": "kuva.jpg", "content_type": "image/jpeg", "size": 12}
        ]


async def test_web_chats_and_unrelated_numbers_stay_apart(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, ALL_REPLIES_REQUESTED, ReplyRequested)
        async with worker(svc, answering()):
            await svc.publisher.publish(message(Channel.SMS, NUMBER, "Kirjasto?", "SM1"))
            await svc.publisher.publish(message(Channel.SMS, "+358409999999", "Kirjasto?", "SM2"))
            await svc.publisher.publish(message(Channel.TELEGRAM, "12345", "Kirjasto?", "1:1"))
            await eventually(lambda: _n(replies, 3), what="three replies")
        assert len({r.conversation_id for r in replies}) == 3


async def _n(items: list[ReplyRequested], n: int) -> bool:
    return len(items) >= n
