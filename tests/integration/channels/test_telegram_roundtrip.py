"""Telegram end to end: updates from a fake Bot API (long poll) or posted to the webhook,
the router, and the reply sent back through the gateway's delivery consumer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from channels.telegram.parse import SECRET_HEADER
from router.phrases import disclosure
from tests.fakes.telegram_server import TelegramFake, private_message
from tests.integration.channels.roundtrip import System, running
from tests.integration.harness import answering, eventually, make_settings, rows

CHAT = 424242
SECRET = "webhook-Secret_123"


@contextlib.asynccontextmanager
async def telegram_system(
    tmp_path: Path, nats_url: str, database_url: str, **kw: Any
) -> AsyncIterator[tuple[System, TelegramFake]]:
    async with TelegramFake() as fake:
        settings = make_settings(
            tmp_path,
            nats_url,
            database_url,
            telegram_bot_token=fake.token,
            telegram_api_url=fake.api_url,
            delivery_backoff=0.2,
            **kw,
        )
        async with running(settings, answering()) as system:
            yield system, fake


async def sent(fake: TelegramFake, n: int) -> None:
    async def check() -> bool:
        return len(fake.sent) >= n

    await eventually(check, what=f"{n} messages sent by the bot")


async def test_a_question_by_long_poll_gets_the_ai_answer_in_the_chat(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with telegram_system(tmp_path, nats_url, database_url) as (system, fake):
        fake.queue_message(CHAT, "Milloin kirjasto on auki?")
        await sent(fake, 1)
        (answer,) = fake.sent
        assert answer.chat_id == CHAT
        assert "Kirjasto on auki arkisin." in answer.text
        assert disclosure("fi") in answer.text
        assert "https://kunta.example/kirjasto" in answer.text
        (reply,) = await system.replies()

        async def delivered() -> bool:
            (stored,) = await rows(system.svc, "message", id=reply["id"])
            return bool(stored["status"] == "sent")

        await eventually(delivered, what="status sent")


async def test_a_handoff_by_webhook_and_the_agents_reply_arrive_in_the_chat(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    settings = {"public_url": "https://kunta.example", "telegram_webhook_secret": SECRET}
    async with telegram_system(tmp_path, nats_url, database_url, **settings) as (system, fake):
        update = {"update_id": 9001, "message": private_message(CHAT, 7, "Haluan ihmisen")}
        r = await system.http.post(
            "/webhooks/telegram",
            content=json.dumps(update).encode(),
            headers={"content-type": "application/json", SECRET_HEADER: SECRET},
        )
        assert r.status_code == 200, r.text
        await sent(fake, 1)
        (ticket,) = await system.tickets()
        assert ticket["case_number"] in fake.sent[0].text
        staff = await system.staff()
        try:
            r = await staff.post(f"/api/tickets/{ticket['id']}/reply", json={"text": "Autan!"})
            assert r.status_code == 202, r.text
        finally:
            await staff.aclose()
        await sent(fake, 2)
        assert fake.sent[1].chat_id == CHAT and "Autan!" in fake.sent[1].text


async def test_a_blocked_bot_puts_the_undelivered_answer_in_front_of_a_person(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with telegram_system(tmp_path, nats_url, database_url) as (system, fake):
        fake.block_by_user()
        fake.queue_message(CHAT, "Milloin kirjasto on auki?")

        async def ticket() -> bool:
            return bool(await system.tickets())

        await eventually(ticket, what="a delivery-failure ticket")
        assert (await system.tickets())[0]["reason"] == "delivery_failed"
        assert fake.sent == []
