"""Polling an IMAP mailbox (aioimaplib) for installations whose mail server delivers there.

Each round logs in, asks for the UIDs above the last one taken (kept in the inbox state
``imap:<user>@<host>/<folder>`` with the folder's UIDVALIDITY), fetches each message,
hands it to the intake and marks it seen. A message is only passed by once it is in the
inbox (or dropped for a reason): when the inbox is down the round stops and the next one
starts again from the same message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import aioimaplib  # type: ignore[import-untyped]

from channels.base import InboundRequest
from channels.email.intake import Intake, Result
from channels.inbox import ChannelState
from router.settings import Settings

log = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
# Messages taken per round, so one round never holds the connection for long.
BATCH = 100


def state_key(settings: Settings) -> str:
    return f"imap:{settings.imap_username or ''}@{settings.imap_host}/{settings.imap_folder}"


class ImapError(Exception):
    """The server said NO or BAD (the text never holds the password)."""


def _check(response: Any, what: str) -> Any:
    if response.result != "OK":
        lines = [bytes(x) for x in response.lines if isinstance(x, bytes | bytearray)]
        text = b" ".join(lines).decode(errors="replace")[:200]
        raise ImapError(f"IMAP {what}: {response.result} {text}")
    return response


def uidvalidity(response: Any) -> int | None:
    for line in response.lines:
        if isinstance(line, bytes | bytearray):
            found = _UIDVALIDITY.search(bytes(line))
            if found:
                return int(found.group(1))
    return None


def uids(response: Any) -> list[int]:
    """The UIDs of a UID SEARCH answer ("1 2 3", then the completion text)."""
    found: list[int] = []
    for line in response.lines[:-1] if len(response.lines) > 1 else response.lines:
        if isinstance(line, bytes | bytearray):
            words = bytes(line).split()
            if words and all(w.isdigit() for w in words):
                found.extend(int(w) for w in words)
    return sorted(set(found))


def fetched_message(response: Any) -> bytes | None:
    """The message literal of a UID FETCH answer."""
    for line in response.lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


def _client(settings: Settings) -> Any:
    assert settings.imap_host is not None
    if settings.imap_ssl:
        return aioimaplib.IMAP4_SSL(host=settings.imap_host, port=settings.imap_port)
    return aioimaplib.IMAP4(host=settings.imap_host, port=settings.imap_port)


async def poll_once(settings: Settings, intake: Intake, state: ChannelState) -> int:
    """One round; the number of messages passed by."""
    key = state_key(settings)
    client = _client(settings)
    done = 0
    try:
        await client.wait_hello_from_server()
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        _check(await client.login(settings.imap_username or "", password), "login")
        selected = _check(await client.select(settings.imap_folder), "select")
        validity = uidvalidity(selected)
        stored = await state.get(key) or {}
        last = int(stored.get("uid", 0)) if stored.get("uidvalidity") == validity else 0
        # A mailbox seen for the first time (or renumbered): what nobody has read yet.
        criteria = [f"UID {last + 1}:*"] if last else ["UNSEEN"]
        found = uids(_check(await client.uid_search(*criteria, charset=None), "search"))
        for uid in [u for u in found if u > last][:BATCH]:
            # PEEK: the message stays unseen until it is taken (a failed round retries it).
            fetched = _check(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), "fetch")
            raw = fetched_message(fetched)
            if raw is not None:
                outcome = await intake.take(InboundRequest(body=raw))
                if outcome.result is Result.RETRY:
                    break
                if outcome.result is Result.REJECTED:
                    log.warning("email: IMAP message %s refused: %s", uid, outcome.reason)
            await client.uid("store", str(uid), "+FLAGS", "(\\Seen)")
            last = uid
            await state.set(key, {"uid": last, "uidvalidity": validity})
            done += 1
        with contextlib.suppress(Exception):
            await client.logout()
    finally:
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
    return done


async def poll_imap(
    settings: Settings, intake: Intake, state: ChannelState, stopping: asyncio.Event
) -> None:
    """Poll every ``imap_poll_seconds`` until ``stopping``; trouble is logged, not raised."""
    while not stopping.is_set():
        try:
            await poll_once(settings, intake, state)
        except (ImapError, aioimaplib.AioImapException, OSError, TimeoutError) as e:
            log.warning("email: IMAP poll of %s failed: %s", settings.imap_host, e)
        except Exception:
            log.exception("email: IMAP poll of %s failed", settings.imap_host)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.imap_poll_seconds)
