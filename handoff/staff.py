"""Staff accounts, their permissions and their sign-in sessions (the ``staff_*`` tables).

Passwords and tokens never reach this module in the clear: it stores and compares the
hashes ``handoff.auth`` makes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.queues import Queue
from router.db import insert_ignore
from router.events import utcnow
from router.tables import StaffSessionRow, StaffUserRow

USER = StaffUserRow.__table__  # type: ignore[attr-defined]
SESSION = StaffSessionRow.__table__  # type: ignore[attr-defined]

StaffRole = Literal["agent", "admin"]
ROLES: tuple[str, ...] = get_args(StaffRole)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


def normalize_username(raw: str) -> str:
    """Usernames are case-insensitive: ``Anna`` signs in as ``anna``."""
    return raw.strip().lower()


def username_problem(username: str) -> str | None:
    """Why ``username`` (normalized) cannot be an account name, or None when it can."""
    if USERNAME.fullmatch(username):
        return None
    return (
        "a username is 1–64 characters: lowercase letters a–z, digits and . _ @ -, "
        "starting with a letter or digit"
    )


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: StaffRole
    queues: tuple[str, ...] = ()
    disabled: bool = False
    created_at: datetime | None = None
    last_login_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def can_see(user: StaffUser, queue: str) -> bool:
    """Whether ``user`` may see and work on the tickets of ``queue``."""
    if user.disabled:
        return False
    return user.is_admin or queue in user.queues


def allowed_queues(user: StaffUser) -> list[str] | None:
    """The queues whose tickets ``user`` may see, as ticket queries take them (None: all)."""
    return None if user.is_admin else [q for q in user.queues if can_see(user, q)]


def visible_queues(user: StaffUser, queues: Iterable[Queue]) -> tuple[Queue, ...]:
    """The queues ``user`` works in, in their configured order."""
    return tuple(q for q in queues if can_see(user, q.name))


@dataclass(frozen=True)
class SessionPolicy:
    """How long a signed-in browser stays signed in."""

    idle: timedelta = timedelta(hours=8)
    lifetime: timedelta = timedelta(hours=24)
    # ``last_seen_at`` is written at most this often (not on every request).
    touch_every: timedelta = timedelta(minutes=1)

    def alive(self, *, created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
        return now < created_at + self.lifetime and now < last_seen_at + self.idle


class UserExists(ValueError):
    pass


def _user(row: Any) -> StaffUser:
    return StaffUser(
        id=row.id,
        username=row.username,
        role=row.role,
        queues=tuple(row.queues or ()),
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


_USER_COLUMNS = (
    USER.c.id,
    USER.c.username,
    USER.c.role,
    USER.c.queues,
    USER.c.disabled,
    USER.c.created_at,
    USER.c.last_login_at,
)


class StaffStore:
    def __init__(self, engine: AsyncEngine, policy: SessionPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or SessionPolicy()

    # ---- accounts ---------------------------------------------------------------------

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(USER))).scalar_one())

    async def add(
        self,
        username: str,
        password_hash: str,
        role: StaffRole,
        queues: Sequence[str] = (),
        *,
        only_if_first: bool = False,
    ) -> StaffUser | None:
        """Create an account; ``only_if_first``: only into an empty table (else None)."""
        if problem := username_problem(username):
            raise ValueError(problem)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        values = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "queues": list(dict.fromkeys(queues)),
            "disabled": False,
            "created_at": utcnow(),
        }
        async with self.engine.begin() as conn:
            if only_if_first:
                if (await conn.execute(select(func.count()).select_from(USER))).scalar_one():
                    return None
                # Two processes starting at once: the second one's insert does nothing.
                await conn.execute(insert_ignore(conn, USER).values(values))
            else:
                try:
                    await conn.execute(USER.insert().values(values))
                except IntegrityError:
                    raise UserExists(username) from None
            row = (
                await conn.execute(select(*_USER_COLUMNS).where(USER.c.username == username))
            ).one()
        return _user(row)

    async def credentials(self, username: str) -> tuple[StaffUser, str] | None:
        """The account and its password hash, or None when there is no such account."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_USER_COLUMNS, USER.c.password_hash).where(USER.c.username == username)
                )
            ).one_or_none()
        return None if row is None else (_user(row), row.password_hash)

    async def get(self, username: str) -> StaffUser | None:
        found = await self.credentials(username)
        return None if found is None else found[0]

    async def all(self) -> list[StaffUser]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_USER_COLUMNS).order_by(USER.c.username))
            return [_user(r) for r in rows]

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(USER).where(USER.c.id == user_id).values(password_hash=password_hash)
            )

    async def disable(self, username: str) -> int | None:
        """Disable the account and end its sessions; how many ended (None: no such user)."""
        async with self.engine.begin() as conn:
            user_id = (
                await conn.execute(select(USER.c.id).where(USER.c.username == username))
            ).scalar_one_or_none()
            if user_id is None:
                return None
            await conn.execute(update(USER).where(USER.c.id == user_id).values(disabled=True))
            ended = await conn.execute(delete(SESSION).where(SESSION.c.user_id == user_id))
            return int(ended.rowcount or 0)

    # ---- sessions ---------------------------------------------------------------------

    async def start_session(
        self,
        user_id: int,
        token_hash: str,
        csrf_hash: str,
        *,
        replaces: str | None = None,
        now: datetime | None = None,
    ) -> datetime:
        """Store a new session (and the sign-in time); returns when it ends at the latest."""
        now = now or utcnow()
        p = self.policy
        expires = now + p.lifetime
        async with self.engine.begin() as conn:
            # Sessions that ended by themselves go when anyone signs in.
            stale = or_(SESSION.c.expires_at <= now, SESSION.c.last_seen_at <= now - p.idle)
            if replaces is not None:
                stale = or_(stale, SESSION.c.token_hash == replaces)
            await conn.execute(delete(SESSION).where(stale))
            await conn.execute(
                SESSION.insert().values(
                    token_hash=token_hash,
                    csrf_hash=csrf_hash,
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
            await conn.execute(update(USER).where(USER.c.id == user_id).values(last_login_at=now))
        return expires

    async def session(
        self, token_hash: str, *, now: datetime | None = None, touch: bool = True
    ) -> tuple[StaffUser, str] | None:
        """The signed-in account and the session's CSRF hash; None when not signed in.

        ``touch``: the request counts as activity (keeps an idle session alive).
        """
        now = now or utcnow()
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        *_USER_COLUMNS,
                        SESSION.c.csrf_hash,
                        SESSION.c.created_at.label("session_created_at"),
                        SESSION.c.last_seen_at,
                        SESSION.c.expires_at,
                    )
                    .join(USER, USER.c.id == SESSION.c.user_id)
                    .where(SESSION.c.token_hash == token_hash)
                )
            ).one_or_none()
        if row is None:
            return None
        alive = now < row.expires_at and self.policy.alive(
            created_at=row.session_created_at, last_seen_at=row.last_seen_at, now=now
        )
        if not alive or row.disabled:
            await self.end_session(token_hash)
            return None
        if touch and now - row.last_seen_at >= self.policy.touch_every:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(SESSION)
                    .where(SESSION.c.token_hash == token_hash)
                    .values(last_seen_at=now)
                )
        return _user(row), row.csrf_hash

    async def end_session(self, token_hash: str) -> bool:
        async with self.engine.begin() as conn:
            ended = await conn.execute(delete(SESSION).where(SESSION.c.token_hash == token_hash))
            return bool(ended.rowcount)

    async def sessions_of(self, username: str) -> int:
        async with self.engine.connect() as conn:
            n = await conn.execute(
                select(func.count())
                .select_from(SESSION.join(USER, USER.c.id == SESSION.c.user_id))
                .where(USER.c.username == username)
            )
            return int(n.scalar_one())
