"""The router on a real nats-server with JetStream and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agents.base import Assessment, TriageRequest
from router import subjects
from router.bus import EventPublisher
from router.events import (
    Address,
    Channel,
    HandoffRequested,
    MessageReceived,
    ReplyRequested,
    Role,
    utcnow,
)
from router.subjects import ALL_HANDOFF, reply_requested
from router.tables import TicketRow
from tests.integration.harness import (
    ScriptedAgent,
    answering,
    collect,
    count,
    eventually,
    library_answer,
    make_settings,
    rows,
    services,
    worker,
)


def sms(text: str, provider_id: str, number: str = "+358401234567") -> MessageReceived:
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=provider_id,
        sender=Address(channel=Channel.SMS, value=number),
        text=text,
    )


async def test_a_message_is_answered_and_recorded(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        async with worker(svc, answering()):
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM1"))
            await eventually(lambda: _has(replies, 1), what="the reply event")
        reply = replies[0]
        assert reply.recipient == Address(channel=Channel.SMS, value="+358401234567")
        assert "Kirjasto on auki" in reply.text
        assert reply.sources[0].doc_id == "lib"
        stored = await rows(svc, "message", id=reply.message_id)
        assert stored[0]["role"] == "ai" and stored[0]["status"] == "pending"
        (decision,) = await rows(svc, "decision")
        assert decision["action"] == "answer"
        assert decision["agent"] == "scripted"
        assert decision["confidence"] == pytest.approx(0.9)
        assert decision["policy_version"] == 0


async def _has(items: list[ReplyRequested], n: int) -> bool:
    return len(items) >= n


async def test_a_message_survives_a_router_crash_between_receipt_and_triage(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    settings = make_settings(tmp_path, nats_url, database_url, ack_wait=1.0)
    async with services(settings) as svc:
        entered = asyncio.Event()

        async def hang(request: TriageRequest) -> Assessment:
            entered.set()
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        async with worker(svc, ScriptedAgent(hang)) as first:
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM-crash"))
            await asyncio.wait_for(entered.wait(), 10)
            # The message is stored and triage is under way: the worker dies without acking.
            assert await count(svc, "message", role="resident") == 1
            assert await count(svc, "decision") == 0
            await first.crash()

        # A new worker gets the message again once the ack wait has passed.
        agent = answering()
        async with worker(svc, agent):
            await eventually(lambda: _count_is(svc, "decision", 1), what="the decision")
            await asyncio.sleep(1.5)  # anything more would be a duplicate
        assert agent.calls == 1
        assert await count(svc, "message", role="resident") == 1
        assert await count(svc, "message", role="ai") == 1
        assert await count(svc, "decision") == 1


async def _count_is(svc: object, table: str, n: int) -> bool:
    return await count(svc, table) == n  # type: ignore[arg-type]


async def test_messages_published_while_no_router_runs_are_handled_later(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        async with worker(svc, answering()):
            pass  # creates the durable consumer, then stops
        for i in range(5):
            await svc.publisher.publish(sms(f"Kysymys {i}", f"SM-later-{i}"))
        async with worker(svc, answering()):
            await eventually(lambda: _count_is(svc, "decision", 5), what="five decisions")
        assert await count(svc, "message", role="ai") == 5


async def test_the_same_provider_message_twice_is_stored_and_answered_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        agent = answering()
        js = svc.broker.connection.jetstream()
        async with worker(svc, agent):
            first = sms("Milloin kirjasto on auki?", "SM-dup")
            again = sms("Milloin kirjasto on auki?", "SM-dup")  # a provider retry: new event id
            assert first.message_id != again.message_id
            await svc.publisher.publish(first)
            ack = await js.publish(
                "neuvonta.v1.message.received.sms",
                again.to_json(),
                headers={"Nats-Msg-Id": again.dedup_key},
            )
            assert ack.duplicate  # JetStream drops it inside its window …
            # … and past the window (a different Nats-Msg-Id) the database does.
            await js.publish(
                "neuvonta.v1.message.received.sms",
                again.to_json(),
                headers={"Nats-Msg-Id": "after-the-window"},
            )
            await eventually(lambda: _count_is(svc, "decision", 1), what="the decision")
            await asyncio.sleep(1.0)
        assert await count(svc, "message", role="resident") == 1
        assert await count(svc, "message", role="ai") == 1
        assert await count(svc, "decision") == 1
        assert agent.calls == 1


async def test_duplicates_inside_one_batch_are_handled_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        js = svc.broker.connection.jetstream()
        async with worker(svc, answering()):
            pass
        for i in range(3):  # land in the stream before a worker fetches them together
            await js.publish(
                "neuvonta.v1.message.received.sms",
                sms("Kirjasto?", "SM-batch").to_json(),
                headers={"Nats-Msg-Id": f"copy-{i}"},
            )
        async with worker(svc, answering()):
            await eventually(lambda: _count_is(svc, "decision", 1), what="the decision")
            await asyncio.sleep(0.5)
        assert await count(svc, "message", role="resident") == 1
        assert await count(svc, "message", role="ai") == 1


def held_at(text: str) -> tuple[ScriptedAgent, asyncio.Event, asyncio.Event]:
    """An agent that answers, except that the question ``text`` waits for ``release``;
    ``holding`` is set once it does."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def behave(request: TriageRequest) -> Assessment:
        if request.text == text:
            holding.set()
            await release.wait()
        return library_answer(request)

    return ScriptedAgent(behave), holding, release


async def test_a_worker_answers_the_next_batch_while_a_slow_one_is_in_hand(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        agent, holding, release = held_at("Hidas kysymys")
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Hidas kysymys", "SM-slow", "+358401111111"))
            await asyncio.wait_for(holding.wait(), 10)
            await svc.publisher.publish(sms("Kirjasto?", "SM-next", "+358402222222"))
            # Another resident's message fetched meanwhile is not stuck behind the slow one.
            await eventually(lambda: _count_is(svc, "decision", 1), what="the next answer")
            release.set()
            await eventually(lambda: _count_is(svc, "decision", 2), what="the slow answer")
        assert await count(svc, "message", role="ai") == 2


async def test_a_copy_delivered_while_its_original_is_in_hand_is_triaged_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        js = svc.broker.connection.jetstream()
        agent, holding, release = held_at("Milloin kirjasto on auki?")
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM-twice"))
            await asyncio.wait_for(holding.wait(), 10)
            # The provider sends it again past JetStream's window: a second batch takes it.
            await js.publish(
                "neuvonta.v1.message.received.sms",
                sms("Milloin kirjasto on auki?", "SM-twice").to_json(),
                headers={"Nats-Msg-Id": "after-the-window"},
            )
            await asyncio.sleep(0.5)
            release.set()
            await eventually(lambda: _count_is(svc, "decision", 1), what="the decision")
            consumer = subjects.Durable.ROUTER_INBOUND.value
            stream = subjects.Stream.CONVERSATIONS.value

            async def both_acked() -> bool:
                info = await js.consumer_info(stream, consumer)
                return bool(info.num_ack_pending == 0 and info.num_pending == 0)

            await eventually(both_acked, what="both copies acked")
        assert agent.calls == 1
        assert await count(svc, "message", role="resident") == 1
        assert await count(svc, "message", role="ai") == 1


@pytest.mark.parametrize(("failure", "reason"), [("raise", "ai_error"), ("hang", "ai_timeout")])
async def test_an_ai_failure_hands_the_message_to_people(
    tmp_path: Path, nats_url: str, database_url: str, failure: str, reason: str
) -> None:
    async def fail(request: TriageRequest) -> Assessment:
        if failure == "raise":
            raise RuntimeError("model endpoint returned 500")
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    settings = make_settings(tmp_path, nats_url, database_url, agent_timeout=0.3)
    async with services(settings) as svc:
        async with worker(svc, ScriptedAgent(fail)):
            await svc.publisher.publish(sms("Laskuni on väärin", "SM-fail"))
            await eventually(lambda: _count_is(svc, "ticket", 1), what="a ticket")
        (ticket,) = await rows(svc, "ticket")
        assert ticket["reason"] == reason
        assert ticket["status"] == "open"
        assert ticket["queue"] == "general"
        (ack,) = await rows(svc, "message", role="system")
        assert ticket["case_number"] in ack["text"]
        (conv,) = await rows(svc, "conversation")
        assert conv["owner"] == "human"


async def test_a_person_owned_conversation_gets_no_ai_reply(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        handoffs = await collect(svc, ALL_HANDOFF, HandoffRequested)
        agent = answering()
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-h1"))
            await eventually(lambda: _count_is(svc, "ticket", 1), what="a ticket")
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM-h2"))
            await eventually(lambda: _count_is(svc, "decision", 2), what="two decisions")
            await eventually(lambda: _true(len(handoffs) == 2), what="two handoff events")
        assert agent.calls == 1  # the AI never saw the second message
        decisions = {d["action"] for d in await rows(svc, "decision")}
        assert decisions == {"handoff", "hold"}
        assert await count(svc, "message", role="ai") == 0
        assert await count(svc, "message", role="system") == 1
        assert [h.new_ticket for h in handoffs] == [True, False]
        assert handoffs[0].reason == "asked_for_human"
        assert handoffs[1].case_number == handoffs[0].case_number


async def test_an_urgent_message_in_a_person_owned_conversation_gets_guidance_at_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        handoffs = await collect(svc, ALL_HANDOFF, HandoffRequested)
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        agent = answering()
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-u1"))
            await eventually(lambda: _count_is(svc, "ticket", 1), what="a ticket")
            (ticket,) = await rows(svc, "ticket")
            assert not ticket["urgent"]
            await svc.publisher.publish(sms("Isäni ei hengitä!", "SM-u2"))
            await eventually(lambda: _has(replies, 2), what="the emergency guidance")
            await eventually(lambda: _true(len(handoffs) == 2), what="the ticket update")
        assert agent.calls == 1  # still no AI triage while a person owns the conversation
        guidance = replies[1]
        assert guidance.role is Role.SYSTEM
        assert "112" in guidance.text
        assert handoffs[1].urgent and not handoffs[1].new_ticket
        (ticket,) = await rows(svc, "ticket")
        assert ticket["urgent"]
        # A later ordinary message does not clear the flag.
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Kiitos, odotan.", "SM-u3"))
            await eventually(lambda: _count_is(svc, "decision", 3), what="three decisions")
        (ticket,) = await rows(svc, "ticket")
        assert ticket["urgent"]
        assert await count(svc, "message", role="ai") == 0


async def _true(value: bool) -> bool:
    return value


async def test_an_unreadable_event_is_dead_lettered_and_the_rest_flow(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        js = svc.broker.connection.jetstream()
        async with worker(svc, answering()):
            await js.publish("neuvonta.v1.message.received.sms", b'{"not": "an event"}')
            await svc.publisher.publish(sms("Kirjasto?", "SM-after-bad"))
            await eventually(lambda: _count_is(svc, "dead_letter", 1), what="a dead letter")
            await eventually(lambda: _count_is(svc, "decision", 1), what="the good message")
        (dead,) = await rows(svc, "dead_letter")
        assert dead["payload"] == '{"not": "an event"}'
        assert "not a valid MessageReceived" in dead["error"]
        assert dead["stream"] == "NEUVONTA_CONVERSATIONS"


async def test_a_write_the_database_refuses_is_dead_lettered_not_retried_forever(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        async with worker(svc, answering()):
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM1"))
            await eventually(lambda: _count_is(svc, "decision", 1), what="the first answer")
            # A ticket put in by hand, past the router: the conversation's handoff can
            # never be written (one active ticket per conversation). Waiting would not
            # help, so people must see the message in the dead letters.
            (conversation,) = await rows(svc, "conversation")
            async with svc.engine.begin() as conn:
                await conn.execute(
                    TicketRow.__table__.insert().values(  # type: ignore[attr-defined]
                        case_number="NV-HAND-MADE",
                        conversation_id=conversation["id"],
                        queue="general",
                        status="open",
                        reason="asked_for_human",
                        sources=[],
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM2"))
            await eventually(
                lambda: _count_is(svc, "dead_letter", 1), timeout=20, what="a dead letter"
            )
        (dead,) = await rows(svc, "dead_letter")
        assert "processing failed repeatedly" in dead["error"]
        assert "ihmisen kanssa" in dead["payload"]


async def test_a_batch_of_many_conversations_gets_one_reply_each(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        pub = EventPublisher(svc.broker.connection.jetstream())
        async with worker(svc, answering()):
            pass
        await pub.publish_all(
            sms(f"Kysymys {i}", f"SM-many-{i}", number=f"+3584000000{i % 40:02d}")
            for i in range(200)
        )
        async with worker(svc, answering()):
            await eventually(
                lambda: _count_is(svc, "decision", 200), timeout=30, what="200 decisions"
            )
        assert await count(svc, "conversation") == 40
        assert await count(svc, "message", role="ai") == 200
        # Only the first answer of each conversation carries the AI disclosure.
        disclosed = [m for m in await rows(svc, "message", role="ai") if "tekoäly" in m["text"]]
        assert len(disclosed) == 40


async def test_a_quick_answer_does_not_wait_for_a_slow_one_in_the_same_batch(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    release = asyncio.Event()

    async def behave(request: TriageRequest) -> Assessment:
        if "hidas" in request.text:
            await release.wait()  # a slow model call
        return library_answer(request)

    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        pub = EventPublisher(svc.broker.connection.jetstream())
        await pub.publish_all(
            [
                sms("hidas kysymys", "SM-slow", number="+358400000001"),
                *(
                    sms(f"Kysymys {i}", f"SM-quick-{i}", number=f"+35840000010{i}")
                    for i in range(5)
                ),
            ]
        )
        async with worker(svc, ScriptedAgent(behave)):
            await eventually(lambda: _has(replies, 5), what="the five quick replies")
            assert all("hidas" not in r.text for r in replies)
            # The quick ones are committed and acknowledged; the slow one is still in hand.
            assert await count(svc, "decision") == 5
            release.set()
            await eventually(lambda: _has(replies, 6), what="the slow reply")
        assert await count(svc, "decision") == 6


async def test_an_agent_reply_goes_out_on_the_residents_channel(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    from handoff.tickets import TicketService

    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        async with worker(svc, answering()):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-agent"))
            await eventually(lambda: _count_is(svc, "ticket", 1), what="a ticket")
        tickets = TicketService(svc.engine, svc.publisher)
        (summary,) = await tickets.list()
        message_id, queued = await tickets.reply(summary.id, "Hei, soitan teille.", "anna")
        assert queued
        await eventually(
            lambda: _true(any(r.message_id == message_id for r in replies)),
            what="the agent's reply event",
        )
        agent_reply = next(r for r in replies if r.message_id == message_id)
        assert agent_reply.role is Role.AGENT
        assert agent_reply.recipient.value == "+358401234567"
        detail = await tickets.get(summary.id)
        assert [m.role for m in detail.transcript] == ["resident", "system", "agent"]
        assert detail.first_response_at is not None
        resolved = await tickets.resolve(summary.id, "anna")
        assert resolved.status == "resolved"
        (conv,) = await rows(svc, "conversation")
        assert conv["owner"] == "ai"
