"""Reading and opening conversations: what the resident and agents see."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from router.events import (
    Address,
    AttachmentRef,
    Channel,
    ReplyRequested,
    Role,
    SourceRef,
    new_id,
    utcnow,
)
from router.tables import ConversationRow, MessageRow

CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]


class MessageView(BaseModel):
    """A message as the resident sees it."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: Role
    text: str
    sources: list[SourceRef]
    created_at: datetime

    @classmethod
    def from_reply(cls, reply: ReplyRequested) -> MessageView:
        return cls(
            id=reply.message_id,
            role=reply.role,
            text=reply.text,
            sources=list(reply.sources),
            created_at=reply.occurred_at,
        )


class StaffMessageView(MessageView):
    """A message as agents see it: with channel, delivery status and author, and for an
    inbound message the whole text and its attachments."""

    channel: str
    status: str
    author: str | None
    full_text: str | None = None
    attachments: list[AttachmentRef] = []
    delivery_error: str | None = None


def _row_view(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "role": r.role,
        "text": r.text,
        "sources": r.sources,
        "created_at": r.created_at,
    }


class Conversations:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open_web_session(self, language: str | None = None) -> tuple[str, str]:
        """A new web chat: returns (session id, conversation id).

        The session id is the resident's secret key to the conversation (the address).
        """
        session_id = secrets.token_urlsafe(18)
        address = Address(channel=Channel.WEB, value=session_id)
        conversation_id = new_id()
        now = utcnow()
        async with self.engine.begin() as conn:
            await conn.execute(
                CONVERSATION.insert().values(
                    id=conversation_id,
                    thread_key=str(address),
                    channel=Channel.WEB.value,
                    address=str(address),
                    language=language,
                    owner="ai",
                    ai_turns=0,
                    clarifications=0,
                    disclosed=False,
                    created_at=now,
                    updated_at=now,
                )
            )
        return session_id, conversation_id

    async def by_thread(self, thread_key: str) -> str | None:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(CONVERSATION.c.id).where(CONVERSATION.c.thread_key == thread_key)
                )
            ).scalar_one_or_none()

    async def messages(self, conversation_id: str) -> list[MessageView]:
        m = MESSAGE.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(m.id, m.role, m.text, m.sources, m.created_at)
                .where(m.conversation_id == conversation_id)
                .order_by(m.created_at, m.id)
            )
            return [MessageView.model_validate(_row_view(r)) for r in rows]

    async def staff_messages(self, conversation_id: str) -> list[StaffMessageView]:
        m = MESSAGE.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    m.id,
                    m.role,
                    m.text,
                    m.sources,
                    m.created_at,
                    m.channel,
                    m.status,
                    m.author,
                    m.full_text,
                    m.attachments,
                    m.delivery_error,
                )
                .where(m.conversation_id == conversation_id)
                .order_by(m.created_at, m.id)
            )
            return [
                StaffMessageView.model_validate(
                    {
                        **_row_view(r),
                        "channel": r.channel,
                        "status": r.status,
                        "author": r.author,
                        "full_text": r.full_text,
                        "attachments": r.attachments or [],
                        "delivery_error": r.delivery_error,
                    }
                )
                for r in rows
            ]
