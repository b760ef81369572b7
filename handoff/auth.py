"""Who may use the agent console: staff accounts that sign in with a password.

- Accounts (``staff_user``, managed with ``neuvonta users``) have the role ``agent`` or
  ``admin``; an agent sees the tickets of their own queues only, an admin all of them
  (``handoff.staff.can_see``). Passwords are kept as argon2id hashes.
- Signing in (``POST /api/auth/login``) starts a server-side session (``staff_session``): the
  browser holds a random token in an HttpOnly, SameSite=Strict cookie (Secure over https or
  when ``NEUVONTA_PUBLIC_URL`` is https); the database keeps only its SHA-256. A session ends
  after 8 hours idle, 24 hours after sign-in, at sign-out, or when the account is disabled.
- CSRF: a state-changing request with a session cookie must carry ``X-CSRF-Token`` equal to
  the ``neuvonta_csrf`` cookie set at sign-in (double submit), whose hash the session keeps too.
- Failed sign-ins are throttled per username and client address (5 failures: 1 minute's
  wait, answered with 429). A refusal never says whether the account exists; unknown
  accounts cost the same password check. Passwords and tokens are never logged.
- On the very first start, with no accounts at all, the web process creates an admin ``demo``
  (``NEUVONTA_CONSOLE_USER``) whose password is ``NEUVONTA_CONSOLE_PASSWORD`` or one generated
  and kept in the data folder, so the banner can print a working demo login.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
import asyncio
import functools
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from handoff.queues import Queue
from handoff.staff import (
    StaffRole,
    StaffStore,
    StaffUser,
    normalize_username,
    username_problem,
    visible_queues,
)

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
SESSION_COOKIE = "neuvonta_session"
CSRF_COOKIE = "neuvonta_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Longer cookie or header values are not ours: not even worth hashing.
MAX_TOKEN_CHARS = 128

SIGN_IN_FAILED = "Sign-in failed: wrong username or password, or the account is not in use."
NOT_SIGNED_IN = "Sign in to use the console."
BAD_CSRF = (
    "Missing or wrong CSRF token: send the X-CSRF-Token header with the value of the "
    "neuvonta_csrf cookie."
)

# argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes).
_HASHER = PasswordHasher()


# ---- passwords and tokens ---------------------------------------------------------------


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable for an account, or None when it is."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must be at least {MIN_PASSWORD_CHARS} characters long"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password must be at most {MAX_PASSWORD_CHARS} characters long"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; False for a wrong password and for a damaged hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


@functools.cache
def decoy_hash() -> str:
    """Checked instead when there is no such account, so that costs the same time."""
    return hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """256 random bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token (SHA-256, hex): a leaked table signs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def csrf_ok(header: str | None, cookie: str | None, session_csrf_hash: str) -> bool:
    """The header repeats the cookie, and both are the token issued with this session."""
    if not header or not cookie or len(header) > MAX_TOKEN_CHARS:
        return False
    return same_secret(header, cookie) & same_secret(token_hash(header), session_csrf_hash)


# ---- throttling ---------------------------------------------------------------------------


@dataclass
class _Failures:
    count: int = 0
    since: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed sign-ins per (username, client address).

    ``max_failures`` failures within ``window`` seconds lock that pair for ``lock`` seconds;
    a successful sign-in clears it. Kept in the memory of one web process.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        lock: float = 60.0,
        window: float = 15 * 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lock = lock
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, _Failures] = {}

    @staticmethod
    def key(username: str, address: str) -> str:
        return f"{normalize_username(username)[:256]}\0{address}"

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        f = self._failures.get(key)
        return 0.0 if f is None else max(0.0, f.locked_until - self._clock())

    def failed(self, key: str) -> float:
        """Count a failure; returns the wait it causes (0 while under the limit)."""
        now = self._clock()
        f = self._failures.get(key)
        if f is None:
            self._make_room(now)
            f = self._failures[key] = _Failures()
        if f.count == 0 or now - f.since > self.window:
            f.count, f.since = 0, now
        f.count += 1
        if f.count >= self.max_failures:
            f.count = 0
            f.locked_until = now + self.lock
        return self.wait(key)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _make_room(self, now: float) -> None:
        if len(self._failures) < self.max_keys:
            return
        for k, f in list(self._failures.items()):
            if f.locked_until <= now and now - f.since > self.window:
                del self._failures[k]
        while len(self._failures) >= self.max_keys:  # the oldest go
            del self._failures[next(iter(self._failures))]


# ---- the web side -------------------------------------------------------------------------


class Credentials(BaseModel):
    username: Annotated[str, Field(max_length=256)]
    # No length limit here: a validation error would echo the password back.
    password: str


class SignedInUser(BaseModel):
    username: str
    role: StaffRole
    queues: list[str] = Field(description="The queues this user sees (admins: all)")


class SignedIn(SignedInUser):
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} on POST, PUT and DELETE")


def error_response(code: int, detail: str) -> dict[int | str, dict[str, object]]:
    return {code: {"description": detail, "content": {"application/json": {}}}}


class StaffAuth:
    """Sign-in, sign-out and the ``current_user`` dependency of every console route."""

    def __init__(
        self,
        store: StaffStore,
        *,
        queues: tuple[Queue, ...],
        public_url: str | None = None,
        throttle: LoginThrottle | None = None,
        concurrent_checks: int = 2,
    ) -> None:
        self.store = store
        self.queues = queues
        self.throttle = throttle or LoginThrottle()
        self._https = (public_url or "").lower().startswith("https://")
        # Each password check takes 64 MiB and a core for ~0.1 s: a flood waits its turn.
        self._checks = asyncio.Semaphore(concurrent_checks)

    def _secure(self, request: Request) -> bool:
        return self._https or request.url.scheme == "https"

    def visible_queue_names(self, user: StaffUser) -> list[str]:
        return [q.name for q in visible_queues(user, self.queues)]

    async def _check_password(self, password_hash: str, password: str) -> bool:
        async with self._checks:
            return await asyncio.to_thread(verify_password, password_hash, password)

    async def _session(
        self, request: Request, *, touch: bool = True
    ) -> tuple[StaffUser, str, str] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = token_hash(token)
        found = await self.store.session(digest, touch=touch)
        return None if found is None else (found[0], found[1], digest)

    async def still_signed_in(self, request: Request) -> StaffUser | None:
        """The session's account now, without counting this as activity."""
        found = await self._session(request, touch=False)
        return None if found is None else found[0]

    @staticmethod
    def _csrf_ok(request: Request, csrf_hash: str) -> bool:
        return csrf_ok(
            request.headers.get(CSRF_HEADER), request.cookies.get(CSRF_COOKIE), csrf_hash
        )

    async def current_user(self, request: Request) -> StaffUser:
        """The signed-in account (401 when none); state changes need the CSRF token (403)."""
        found = await self._session(request)
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, NOT_SIGNED_IN)
        user, csrf_hash, _ = found
        if request.method not in SAFE_METHODS and not self._csrf_ok(request, csrf_hash):
            log.warning(
                "%s %s by %s refused: no valid CSRF token",
                request.method,
                request.url.path,
                user.username,
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, BAD_CSRF)
        return user

    def _set_cookies(self, request: Request, response: Response, token: str, csrf: str) -> None:
        secure = self._secure(request)
        max_age = int(self.store.policy.lifetime.total_seconds())
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
        # Readable by the console's script, which sends it back as the CSRF header.
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=False,
            samesite="strict",
        )

    def _clear_cookies(self, request: Request, response: Response) -> None:
        secure = self._secure(request)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict"
        )
        response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")

    def router(self) -> APIRouter:
        router = APIRouter(tags=["sign-in"])
        User = Annotated[StaffUser, Depends(self.current_user)]

        @router.post(
            "/api/auth/login",
            response_model=SignedIn,
            responses={
                **error_response(401, SIGN_IN_FAILED),
                **error_response(429, "Too many failed sign-ins: wait (Retry-After seconds)."),
            },
        )
        async def login(body: Credentials, request: Request, response: Response) -> SignedIn:
            """Sign in; sets the session and CSRF cookies."""
            username = normalize_username(body.username)
            address = request.client.host if request.client else "unknown"
            key = self.throttle.key(username, address)
            if wait := self.throttle.wait(key):
                raise _throttled(wait)
            found = None if username_problem(username) else await self.store.credentials(username)
            # No such account: a check of the same cost all the same (no timing difference).
            password_hash = found[1] if found else await asyncio.to_thread(decoy_hash)
            password_ok = await self._check_password(
                password_hash, body.password[:MAX_PASSWORD_CHARS]
            )
            too_long = len(body.password) > MAX_PASSWORD_CHARS
            if found is None or not password_ok or too_long or found[0].disabled:
                wait = self.throttle.failed(key)
                # The name only when it is an account: people type passwords into it too.
                log.info(
                    "console sign-in refused%s from %s",
                    f" for {found[0].username}" if found else "",
                    address,
                )
                if wait:
                    raise _throttled(wait)
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, SIGN_IN_FAILED)
            user = found[0]
            self.throttle.succeeded(key)
            if needs_rehash(password_hash):
                new_hash = await asyncio.to_thread(hash_password, body.password)
                await self.store.set_password_hash(user.id, new_hash)
            old = request.cookies.get(SESSION_COOKIE)
            token, csrf = new_token(), new_token()
            await self.store.start_session(
                user.id,
                token_hash(token),
                token_hash(csrf),
                replaces=token_hash(old) if old and len(old) <= MAX_TOKEN_CHARS else None,
            )
            self._set_cookies(request, response, token, csrf)
            response.headers["Cache-Control"] = "no-store"
            log.info("console sign-in: %s from %s", user.username, address)
            return SignedIn(
                username=user.username,
                role=user.role,
                queues=self.visible_queue_names(user),
                csrf_token=csrf,
            )

        @router.post(
            "/api/auth/logout",
            status_code=status.HTTP_204_NO_CONTENT,
            responses=error_response(403, BAD_CSRF),
        )
        async def logout(request: Request, response: Response) -> None:
            """Sign out: ends the session and clears the cookies (also when already ended)."""
            found = await self._session(request)
            if found is not None:
                user, csrf_hash, digest = found
                if not self._csrf_ok(request, csrf_hash):
                    raise HTTPException(status.HTTP_403_FORBIDDEN, BAD_CSRF)
                await self.store.end_session(digest)
                log.info("console sign-out: %s", user.username)
            self._clear_cookies(request, response)

        @router.get(
            "/api/auth/me",
            response_model=SignedInUser,
            responses=error_response(401, NOT_SIGNED_IN),
        )
        async def me(user: User, response: Response) -> SignedInUser:
            """Who is signed in (401 when nobody)."""
            response.headers["Cache-Control"] = "no-store"
            return SignedInUser(
                username=user.username, role=user.role, queues=self.visible_queue_names(user)
            )

        return router


def _throttled(wait: float) -> HTTPException:
    seconds = max(1, math.ceil(wait))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"Too many failed sign-ins for this username from your address: try again in "
        f"{seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


# ---- the demo account ---------------------------------------------------------------------


def demo_password(data_dir: Path, configured: str | None) -> str:
    """The configured password, or one generated once and kept in the data folder."""
    if configured:
        return configured
    path = data_dir / "console-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


async def ensure_demo_user(
    store: StaffStore, username: str, data_dir: Path, configured: str | None
) -> str | None:
    """On a first start (no accounts at all) create the admin demo account.

    Returns the demo password while it still signs in (for the banner), else None. Never
    creates anything when any account exists.
    """
    username = normalize_username(username)
    if problem := username_problem(username):
        raise ValueError(f"NEUVONTA_CONSOLE_USER: {problem}")
    if await store.count() == 0:
        password = demo_password(data_dir, configured)
        if password_problem(password):
            log.warning("the demo password is weak: %s", password_problem(password))
        created = await store.add(
            username, await asyncio.to_thread(hash_password, password), "admin", only_if_first=True
        )
        if created is not None:
            log.info("no console accounts yet: created the admin %s (demo login)", username)
    else:
        kept = data_dir / "console-password"
        password = configured or (kept.read_text().strip() if kept.exists() else "")
        if not password:
            return None
    found = await store.credentials(username)
    if found is None or found[0].disabled:
        return None
    if not await asyncio.to_thread(verify_password, found[1], password):
        return None
    return password
