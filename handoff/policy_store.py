"""Where the handoff thresholds live: the database and a NATS KV entry every worker watches.

- The database is the source of truth: ``policy_change`` holds every change (version, who,
  when, old and new, note); the highest version is the current setting. Version 0 is the
  configured default and is never stored.
- A change is optimistic: it names the version it was based on, and a change of a newer
  version in the meantime refuses it (``StaleVersion``; HTTP 409). Two changes racing for
  the same version collide on the primary key, so exactly one wins on SQLite and PostgreSQL.
  A new version is always above the KV entry's too (see ``save``).
- After the commit the new setting is put into the KV bucket ``neuvonta-config`` under the key
  ``policy`` (JSON with its version). The KV entry only ever moves to a higher version
  (compare-and-set on the KV revision), however the writers interleave.
- ``LivePolicy`` keeps a worker's ``Policy`` current: at start the higher version of the KV
  entry and the database (else the configured policy), then every KV update as it comes.
  The pipeline reads the policy once per batch, so each batch is decided under one version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handoff.thresholds import (
    Difference,
    InvalidThresholds,
    Thresholds,
    ThresholdState,
    by_problem,
    checked,
    diff,
    note_problem,
)
from router.bus import config_bucket
from router.events import utcnow
from router.policy import Policy
from router.tables import PolicyChangeRow

log = logging.getLogger(__name__)

POLICY_CHANGE = PolicyChangeRow.__table__  # type: ignore[attr-defined]
KEY = "policy"
NATS_TROUBLE = (NatsError, OSError, TimeoutError)


class StaleVersion(Exception):
    """The change was based on an older version than the current one."""

    def __init__(self, current: ThresholdState, based_on: int | None) -> None:
        self.current = current
        self.based_on = based_on
        by = f" by {current.changed_by}" if current.changed_by else ""
        super().__init__(
            f"the thresholds were changed meanwhile: now version {current.version}{by}"
            + (f", not {based_on}" if based_on is not None else "")
            + "; load them again and redo the change"
        )


@dataclass(frozen=True)
class Saved:
    state: ThresholdState
    # False when the setting was already so: no new version.
    changed: bool
    # The KV entry holds it, so running workers use it within moments; otherwise they take
    # it from the database at their next start.
    live: bool


class HistoryEntry(BaseModel):
    version: int
    changed_by: str
    changed_at: datetime
    note: str | None
    old: dict[str, Any]
    new: dict[str, Any]
    changes: list[Difference]


class PolicyStore:
    """Reads and changes the thresholds; ``js`` None: the database only (no NATS)."""

    def __init__(
        self,
        engine: AsyncEngine,
        base: Policy,
        *,
        queues: Sequence[str],
        js: JetStreamContext | None = None,
        replicas: int = 1,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.base = base
        self.queues = list(queues)
        self.js = js
        self.replicas = replicas
        self.clock = clock
        self._kv: KeyValue | None = None

    def initial(self) -> ThresholdState:
        return ThresholdState.at(0, Thresholds.of(self.base))

    def policy(self, state: ThresholdState) -> Policy:
        return state.policy(self.base)

    # ---- the database -------------------------------------------------------------------

    async def _current(self, conn: AsyncConnection) -> ThresholdState:
        t = POLICY_CHANGE.c
        row = (
            await conn.execute(
                select(t.version, t.new, t.changed_by, t.changed_at)
                .order_by(t.version.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is None:
            return self.initial()
        return ThresholdState.at(
            row.version,
            Thresholds.model_validate(row.new),
            changed_by=row.changed_by,
            changed_at=row.changed_at,
        )

    async def current(self) -> ThresholdState:
        async with self.engine.connect() as conn:
            return await self._current(conn)

    async def history(self, limit: int = 100) -> list[HistoryEntry]:
        """The changes, newest first."""
        t = POLICY_CHANGE.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(POLICY_CHANGE).order_by(t.version.desc()).limit(limit))
            entries = []
            for r in rows:
                old, new = Thresholds.model_validate(r.old), Thresholds.model_validate(r.new)
                entries.append(
                    HistoryEntry(
                        version=r.version,
                        changed_by=r.changed_by,
                        changed_at=r.changed_at,
                        note=r.note,
                        old=old.as_json(),
                        new=new.as_json(),
                        changes=diff(old, new),
                    )
                )
            return entries

    async def save(
        self,
        change: Callable[[Thresholds], Thresholds],
        *,
        by: str,
        note: str | None = None,
        based_on: int | None = None,
    ) -> Saved:
        """Apply ``change`` to the current thresholds and record it as the next version.

        ``based_on``: the version the caller saw (None: whatever is current). Raises
        ``InvalidThresholds`` or ``StaleVersion``; a change that changes nothing is not
        recorded.
        """
        problem = by_problem(by) or note_problem(note)
        if problem is not None:
            raise InvalidThresholds([problem])
        note = (note or "").strip() or None
        # A KV entry ahead of the database (one restored from a backup): the change must
        # still be the newest version, or the workers would keep the entry's.
        there = await self.read_kv()
        floor = there.version if there is not None else 0
        try:
            async with self.engine.begin() as conn:
                current = await self._current(conn)
                if based_on is not None and based_on != current.version:
                    raise StaleVersion(current, based_on)
                new = checked(change(current.thresholds), self.queues)
                if new == current.thresholds:
                    return Saved(current, changed=False, live=await self.publish(current))
                state = ThresholdState.at(
                    max(current.version, floor) + 1,
                    new,
                    changed_by=by.strip(),
                    changed_at=self.clock(),
                )
                await conn.execute(
                    POLICY_CHANGE.insert().values(
                        version=state.version,
                        changed_by=state.changed_by,
                        changed_at=state.changed_at,
                        old=current.thresholds.as_json(),
                        new=new.as_json(),
                        note=note,
                    )
                )
        except IntegrityError:
            # Another change took this version first.
            raise StaleVersion(await self.current(), based_on) from None
        log.info(
            "thresholds version %d by %s: %s",
            state.version,
            state.changed_by,
            "; ".join(d.describe() for d in diff(current.thresholds, new)),
        )
        return Saved(state, changed=True, live=await self.publish(state))

    # ---- the KV entry -------------------------------------------------------------------

    async def bucket(self) -> KeyValue:
        if self.js is None:
            raise RuntimeError("no NATS connection")
        if self._kv is None:
            self._kv = await config_bucket(self.js, self.replicas)
        return self._kv

    async def publish(self, state: ThresholdState) -> bool:
        """Put ``state`` into the KV entry unless it holds this or a newer version already.

        Returns whether the entry is now at least this new (False: no NATS, or it failed).
        """
        if self.js is None:
            return False
        try:
            kv = await self.bucket()
            for _ in range(10):
                try:
                    entry = await kv.get(KEY)
                except KeyNotFoundError:
                    entry = None
                try:
                    if entry is None:
                        await kv.create(KEY, state.to_json())
                        return True
                    there = _parse(entry.value)
                    if there is not None and there.version >= state.version:
                        return True
                    await kv.update(KEY, state.to_json(), last=entry.revision)
                    return True
                except KeyWrongLastSequenceError:
                    continue  # someone else wrote meanwhile: look again
            log.warning("the thresholds KV entry kept changing; version %d not put", state.version)
            return False
        except NATS_TROUBLE:
            log.warning(
                "thresholds version %d is saved but could not be put into NATS KV; running "
                "workers pick it up at their next start",
                state.version,
                exc_info=True,
            )
            return False

    async def read_kv(self) -> ThresholdState | None:
        """The KV entry's setting (None: none yet, unreadable, or no NATS)."""
        if self.js is None:
            return None
        try:
            entry = await (await self.bucket()).get(KEY)
        except KeyNotFoundError:
            return None
        except NATS_TROUBLE:
            log.warning("cannot read the thresholds from NATS KV", exc_info=True)
            return None
        return _parse(entry.value)


def _parse(value: bytes | None) -> ThresholdState | None:
    if not value:
        return None
    try:
        return ThresholdState.from_json(value)
    except ValidationError:
        log.error("the thresholds KV entry is not readable; ignored")
        return None


class LivePolicy:
    """Keeps a worker's policy current: ``load`` at start, then ``run`` watches the KV entry.

    ``on_change`` gets each newer ``Policy``; an older or equal version is never applied.
    ``resync``: seconds between checks of the entry while no update comes (a watch that
    broke with the connection is thus never stale for long).
    """

    def __init__(
        self,
        store: PolicyStore,
        on_change: Callable[[Policy], None],
        *,
        resync: float = 15.0,
    ) -> None:
        self.store = store
        self.on_change = on_change
        self.resync = resync
        self.version = -1
        self.policy = store.policy(store.initial())

    def adopt(self, state: ThresholdState, source: str) -> bool:
        if state.version <= self.version:
            return False
        try:
            policy = self.store.policy(state)
        except ValidationError:
            log.error("thresholds version %d from %s are not valid; ignored", state.version, source)
            return False
        self.version, self.policy = state.version, policy
        self.on_change(policy)
        log.info("thresholds version %d in use (from %s)", state.version, source)
        return True

    async def load(self) -> Policy:
        """The newest setting of the KV entry and the database; the configured policy when
        neither can be read. A newer database setting is put into the KV entry for all."""
        kv = await self.store.read_kv()
        try:
            db: ThresholdState | None = await self.store.current()
        except Exception:
            log.exception("cannot read the thresholds from the database")
            db = None
        if db is not None and (kv is None or db.version > kv.version):
            await self.store.publish(db)
        candidates = [s for s in (kv, db) if s is not None]
        if candidates:
            best = max(candidates, key=lambda s: s.version)
            self.adopt(best, "NATS KV" if best is kv else "the database")
        else:
            log.warning("thresholds unknown: the configured ones apply until NATS KV answers")
        return self.policy

    async def run(self, stopping: asyncio.Event) -> None:
        """Watch the KV entry until ``stopping`` is set; reconnects by itself."""
        stop_wait = asyncio.ensure_future(stopping.wait())
        try:
            while not stop_wait.done():
                try:
                    await self._watch(stop_wait)
                except Exception:
                    if stop_wait.done():
                        break
                    log.warning("watching the thresholds failed; retrying", exc_info=True)
                    await asyncio.wait({stop_wait}, timeout=1.0)
        finally:
            stop_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop_wait

    async def _watch(self, stop_wait: asyncio.Future[Any]) -> None:
        kv = await self.store.bucket()
        watcher = await kv.watch(KEY)
        try:
            while not stop_wait.done():
                update = asyncio.ensure_future(watcher.__anext__())  # type: ignore[no-untyped-call]
                done, _ = await asyncio.wait(
                    {update, stop_wait}, timeout=self.resync, return_when=asyncio.FIRST_COMPLETED
                )
                if update not in done:
                    update.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await update
                    if not stop_wait.done() and (state := await self.store.read_kv()):
                        self.adopt(state, "NATS KV (check)")
                    continue
                try:
                    entry = update.result()
                except StopAsyncIteration:
                    return  # the watch ended: start a new one
                if entry is None or entry.operation in (KV_DEL, KV_PURGE):
                    continue  # the end of the initial values, or a deletion
                if (state := _parse(entry.value)) is not None:
                    self.adopt(state, "NATS KV")
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
