"""``neuvonta residents`` and ``neuvonta retention`` as a data protection officer runs them:
the real CLI on a database the real router filled (SQLite through --data-dir, PostgreSQL
through DATABASE_URL)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from channels.base import OptOut
from channels.inbox import OptOuts
from router.app import Services
from router.cli import app
from router.events import Address, Channel, MessageReceived, utcnow
from router.subjects import Stream
from router.tables import ConversationRow, MessageRow, TicketEventRow, TicketRow
from tests.integration.harness import answering, count, eventually, make_settings, rows, services
from tests.integration.harness import worker as router_worker

NUMBER = "+358401234567"
OTHER = "+358409999999"
CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
TICKET = TicketRow.__table__  # type: ignore[attr-defined]
MESSAGE_TABLE = MessageRow.__table__  # type: ignore[attr-defined]
TICKET_EVENT = TicketEventRow.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("DATABASE_URL", "NEUVONTA_DATABASE_URL", "NEUVONTA_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    for var in ("NEUVONTA_RETENTION_WEB_DAYS", "NEUVONTA_RETENTION_CONTACT_DAYS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


class Cli:
    """The CLI on the test's database: SQLite through the data folder, as `serve` keeps
    it, or PostgreSQL through DATABASE_URL."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.env = {"COLUMNS": "200"}
        self.options: list[str] = []
        if database_url.startswith("sqlite"):
            self.options = ["--data-dir", str(Path(database_url.removeprefix("sqlite:///")).parent)]
        else:
            self.env["DATABASE_URL"] = database_url

    async def __call__(self, *args: str, answer: str | None = None) -> Result:
        # In a thread: the command runs its own event loop.
        return await asyncio.to_thread(
            CliRunner().invoke,
            app,
            [*args, *self.options],
            input=answer,
            env=self.env,
        )

    async def ok(self, *args: str, answer: str | None = None) -> Result:
        result = await self(*args, answer=answer)
        assert result.exit_code == 0, result.output
        return result

    async def export(self, address: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((await self.ok("residents", "export", address)).stdout)
        return data


def sms(channel: Channel, number: str, text: str, pid: str) -> MessageReceived:
    return MessageReceived(
        channel=channel,
        provider_message_id=pid,
        sender=Address(channel=channel, value=number),
        text=text,
    )


async def residents(svc: Services) -> None:
    """The resident writes by SMS, and days later by WhatsApp from the same number (a new
    conversation of the same contact) asking for a person; a staff note on the case, and
    an SMS STOP. Another resident and a web chat beside them."""
    async with router_worker(svc, answering()):
        await svc.publisher.publish(sms(Channel.SMS, NUMBER, "Milloin kirjasto aukeaa?", "S1"))
        await svc.publisher.publish(sms(Channel.SMS, OTHER, "Toisen asukkaan kysymys", "S2"))
        await svc.publisher.publish(
            MessageReceived(
                channel=Channel.WEB,
                provider_message_id="W1",
                sender=Address(channel=Channel.WEB, value="chat-session-1"),
                text="Verkkochatin kysymys",
            )
        )
        await eventually(lambda: _n(svc, 3), what="three decisions")
        # Five days on: a WhatsApp message no longer continues the SMS conversation.
        async with svc.engine.begin() as conn:
            await conn.execute(update(CONVERSATION).values(updated_at=utcnow() - timedelta(days=5)))
        await svc.publisher.publish(
            sms(Channel.WHATSAPP, NUMBER, "Haluan puhua ihmisen kanssa verosta", "WA1")
        )
        await eventually(lambda: _n(svc, 4), what="the WhatsApp decision")
    async with svc.engine.begin() as conn:
        ticket = (await conn.execute(select(TICKET.c.id))).scalar_one()
        await conn.execute(
            TICKET_EVENT.insert().values(
                ticket_id=ticket,
                kind="note",
                actor="anna",
                note="Soitin asukkaalle, asia selvitetään",
                created_at=utcnow(),
            )
        )
    await OptOuts(svc.engine).set(
        OptOut(
            address=Address(channel=Channel.SMS, value=NUMBER),
            opted_out=True,
            provider_message_id="SMstop",
        )
    )


async def _n(svc: Services, n: int) -> bool:
    return await count(svc, "decision") >= n


async def test_export_finds_the_resident_on_every_channel_and_delete_removes_only_them(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    settings = make_settings(tmp_path, nats_url, database_url)
    async with services(settings) as svc:
        await residents(svc)
    cli = Cli(database_url, tmp_path)
    cli.env["NATS_URL"] = nats_url  # the streams keep copies of the events too

    data = await cli.export(f"sms:{NUMBER}")
    assert data["address"] == f"sms:{NUMBER}"
    assert data["contact"] == f"tel:{NUMBER}"
    started = [c["started_from"] for c in data["conversations"]]
    assert started == [f"sms:{NUMBER}", f"whatsapp:{NUMBER}"]
    sms_chat, whatsapp_chat = data["conversations"]
    said = [(m["role"], m["channel"], m["text"]) for m in sms_chat["messages"]]
    assert said[0] == ("resident", "sms", "Milloin kirjasto aukeaa?")
    assert said[1][:2] == ("ai", "sms")
    # No SMS provider in this test: the reply waits for delivery, and the export says so.
    assert sms_chat["messages"][1]["status"] == "pending"
    resident_says = [m["text"] for m in whatsapp_chat["messages"] if m["role"] == "resident"]
    assert resident_says == ["Haluan puhua ihmisen kanssa verosta"]
    (ticket,) = whatsapp_chat["tickets"]
    assert ticket["case_number"].startswith("NV-")
    assert ticket["status"] == "open" and ticket["queue"]
    assert ticket["created_at"] and ticket["resolved_at"] is None
    (noted,) = ticket["timeline"]
    # The internal note is about them and is theirs to see; the staff member's name is not.
    assert noted["note"] == "Soitin asukkaalle, asia selvitetään"
    assert noted["actor"] == "staff"
    assert [d["action"] for d in sms_chat["decisions"]] == ["answer"]
    assert [d["action"] for d in whatsapp_chat["decisions"]] == ["handoff"]
    assert whatsapp_chat["decisions"][0]["wants_human"] is True
    assert data["opt_outs"] == [
        {
            "address": f"sms:{NUMBER}",
            "opted_out": True,
            "updated_at": data["opt_outs"][0]["updated_at"],
        }
    ]
    exported = json.dumps(data, ensure_ascii=False)
    assert "Toisen asukkaan" not in exported and "Verkkochatin" not in exported
    # The same resident found from their WhatsApp address.
    by_whatsapp = await cli.export(f"whatsapp:{NUMBER}")
    assert [c["id"] for c in by_whatsapp["conversations"]] == [
        c["id"] for c in data["conversations"]
    ]
    web = await cli.export("web:chat-session-1")
    (chat,) = web["conversations"]
    assert chat["messages"][0]["text"] == "Verkkochatin kysymys"

    # Asked, and not confirmed: nothing goes.
    refused = await cli("residents", "delete", f"sms:{NUMBER}", answer="n\n")
    assert refused.exit_code == 1
    assert "nothing deleted" in refused.stderr
    assert "This deletes, for sms:+358401234567: " in refused.stdout
    assert "Cases still being worked on: NV-" in refused.stdout
    assert len((await cli.export(f"sms:{NUMBER}"))["conversations"]) == 2

    assert await in_streams(nats_url, NUMBER) > 0
    done = await cli.ok("residents", "delete", f"sms:{NUMBER}", "--yes")
    deleted, kept, erased = done.stdout.splitlines()
    assert deleted == (
        "deleted for sms:+358401234567: 2 conversation, 2 decision, 4 message, 1 ticket, "
        "1 ticket_event"
    )
    assert kept == "kept: the opt-out of sms:+358401234567 (they asked for no more messages)"
    assert erased.startswith("erased from the message streams: ")
    assert int(erased.split(": ")[1].split()[0]) > 0
    # No copy of their messages in the streams, by number or conversation; others' stay.
    assert await in_streams(nats_url, NUMBER) == 0
    assert await in_streams(nats_url, "Milloin kirjasto aukeaa") == 0
    assert await in_streams(nats_url, OTHER) > 0
    after = await cli.export(f"sms:{NUMBER}")
    assert after["conversations"] == []
    assert [o["address"] for o in after["opt_outs"]] == [f"sms:{NUMBER}"]

    # The other resident and the web chat are whole.
    async with services(settings) as svc:
        left = await rows(svc, "conversation")
        assert sorted(c["thread_key"] for c in left) == ["sms:+358409999999", "web:chat-session-1"]
        assert await count(svc, "message") == 4
        assert await count(svc, "decision") == 2
        assert await count(svc, "ticket") == 0

    again = await cli.ok("residents", "delete", f"sms:{NUMBER}", "--yes")
    assert again.stdout.splitlines() == [
        "nothing to delete for sms:+358401234567",
        "kept: the opt-out of sms:+358401234567 (they asked for no more messages)",
        "erased from the message streams: 0 events",
    ]


async def in_streams(nats_url: str, text: str) -> int:
    """How many stored events of all streams contain ``text``."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    found = 0
    try:
        for stream in Stream:
            state = (await js.stream_info(stream.value)).state
            if not state.messages:
                continue
            for seq in range(state.first_seq, state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream.value, seq)
                except NotFoundError:
                    continue  # erased
                found += text.encode() in (msg.data or b"")
    finally:
        await nc.close()
    return found


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("+358401234567", "not an address: '+358401234567'"),
        ("fax:+358401234567", "unknown channel 'fax'"),
        ("web:", "not an address: 'web:'"),
    ],
)
async def test_a_malformed_address_is_refused_with_the_form_to_use(
    tmp_path: Path, address: str, says: str
) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'var' / 'neuvonta.db'}", tmp_path)
    for command in (("export",), ("delete", "--yes")):
        result = await cli("residents", *command, address)
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert says in message
        assert "expected <channel>:<value>" in message
        assert result.stdout == ""


async def test_an_unknown_resident_has_nothing(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'var' / 'neuvonta.db'}", tmp_path)
    result = await cli.ok("residents", "export", "email:nobody@example.fi")
    assert json.loads(result.stdout)["conversations"] == []
    assert "nothing is stored for email:nobody@example.fi" in result.stderr
    done = await cli.ok("residents", "delete", "email:nobody@example.fi")
    assert done.stdout.strip() == "nothing to delete for email:nobody@example.fi"


async def test_retention_run_dry_run_then_for_real(
    tmp_path: Path, nats_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, nats_url, database_url)
    async with services(settings) as svc:
        await residents(svc)
        # A hundred days later: the web chat is past its 90 days, the contacts are not.
        async with svc.engine.begin() as conn:
            await conn.execute(
                update(CONVERSATION)
                .where(CONVERSATION.c.thread_key.startswith("web:"))
                .values(updated_at=utcnow() - timedelta(days=100))
            )
            await conn.execute(
                update(MESSAGE_TABLE)
                .where(MESSAGE_TABLE.c.channel == "web")
                .values(created_at=utcnow() - timedelta(days=100))
            )
    cli = Cli(database_url, tmp_path)

    planned = await cli.ok("retention", "run", "--dry-run")
    lines = [line.split() for line in planned.stdout.splitlines()]
    assert lines[0] == ["table", "would", "delete", "kept", "anonymised"]
    assert ["conversation", "1", "1"] in lines
    assert ["message", "2", "1"] in lines
    assert ["decision", "0", "1"] in lines
    assert "conversations past their limit: 1 web" in planned.stdout
    assert len((await cli.export("web:chat-session-1"))["conversations"]) == 1

    done = await cli.ok("retention", "run")
    assert ["conversation", "1", "1"] in [line.split() for line in done.stdout.splitlines()]
    assert (await cli.export("web:chat-session-1"))["conversations"] == []
    assert len((await cli.export(f"sms:{NUMBER}"))["conversations"]) == 2

    nothing = await cli.ok("retention", "run")
    assert nothing.stdout.strip() == "retention: nothing to delete"
    # 0 days: web chats are kept forever.
    monkeypatch.setenv("NEUVONTA_RETENTION_WEB_DAYS", "0")
    assert (await cli.ok("retention", "run", "--dry-run")).stdout.strip() == (
        "retention: nothing to delete (dry run)"
    )


async def test_delete_erases_the_stream_copies_in_the_data_folders_own_nats(
    tmp_path: Path,
) -> None:
    """`serve` is not running: the command starts the data folder's NATS for the erasure."""
    from router.bus import EventPublisher, ensure_streams
    from router.embedded import EmbeddedNats

    data = tmp_path / "var"
    with EmbeddedNats(data / "nats") as server:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream())
        publisher = EventPublisher(nc.jetstream())
        await publisher.publish(sms(Channel.SMS, NUMBER, "Minun kysymykseni", "E1"))
        await publisher.publish(sms(Channel.SMS, OTHER, "Toisen kysymys", "E2"))
        await nc.close()
    cli = Cli(f"sqlite:///{data / 'neuvonta.db'}", tmp_path)
    done = await cli.ok("residents", "delete", f"sms:{NUMBER}", "--yes")
    assert done.stdout.splitlines() == [
        "nothing to delete for sms:+358401234567",
        "erased from the message streams: 1 events (1 in NEUVONTA_CONVERSATIONS)",
    ]
    with EmbeddedNats(data / "nats") as server:
        assert await in_streams(server.url, NUMBER) == 0
        assert await in_streams(server.url, OTHER) == 1


async def test_delete_after_a_crashed_serve_uses_the_data_folders_own_nats(
    tmp_path: Path,
) -> None:
    """A ``serve`` killed hard leaves its serve.json behind, naming a NATS that is gone: the
    command sees that its process is gone and erases in the data folder's streams."""
    from router.bus import EventPublisher, ensure_streams
    from router.embedded import EmbeddedNats

    data = tmp_path / "var"
    with EmbeddedNats(data / "nats") as server:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream())
        await EventPublisher(nc.jetstream()).publish(
            sms(Channel.SMS, NUMBER, "Minun kysymykseni", "E1")
        )
        await nc.close()
        gone = server.url
    dead_pid = await asyncio.to_thread(_pid_of_finished_process)
    (data / "serve.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9", "nats_url": gone, "pid": dead_pid})
    )
    cli = Cli(f"sqlite:///{data / 'neuvonta.db'}", tmp_path)
    done = await cli.ok("residents", "delete", f"sms:{NUMBER}", "--yes")
    assert done.stdout.splitlines()[-1] == (
        "erased from the message streams: 1 events (1 in NEUVONTA_CONVERSATIONS)"
    )
    with EmbeddedNats(data / "nats") as server:
        assert await in_streams(server.url, NUMBER) == 0


def _pid_of_finished_process() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_delete_says_when_the_streams_cannot_be_reached(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'var' / 'neuvonta.db'}", tmp_path)
    cli.env["NATS_URL"] = "nats://127.0.0.1:9"  # nothing listens there
    result = await cli("residents", "delete", f"sms:{NUMBER}", "--yes")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "could not erase the copies in the message streams" in message
    assert "expire by themselves within 14 days" in message
    # With a shorter retention the streams are shorter too, and the message says so.
    cli.env["NEUVONTA_RETENTION_WEB_DAYS"] = "5"
    shorter = " ".join((await cli("residents", "delete", f"sms:{NUMBER}", "--yes")).stderr.split())
    assert "expire by themselves within 5 days (dead letters 5)" in shorter
