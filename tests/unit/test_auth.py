"""The pure parts of the console sign-in: passwords, tokens, CSRF, throttling, permissions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from handoff.auth import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    LoginThrottle,
    csrf_ok,
    hash_password,
    needs_rehash,
    new_token,
    password_problem,
    same_secret,
    token_hash,
    verify_password,
)
from handoff.queues import DEFAULT_QUEUES
from handoff.staff import (
    SessionPolicy,
    StaffUser,
    can_see,
    normalize_username,
    username_problem,
    visible_queues,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- passwords ---------------------------------------------------------------------------


def test_the_password_policy_wants_ten_to_1024_characters() -> None:
    assert password_problem("x" * (MIN_PASSWORD_CHARS - 1)) == (
        "the password must be at least 10 characters long"
    )
    assert password_problem("") is not None
    assert password_problem("x" * MIN_PASSWORD_CHARS) is None
    assert password_problem("pitkä salasana ✓") is None
    assert password_problem("x" * MAX_PASSWORD_CHARS) is None
    assert "at most" in (password_problem("x" * (MAX_PASSWORD_CHARS + 1)) or "")


def test_a_password_hash_is_argon2id_salted_and_verifies_only_the_password() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert verify_password(first, "correct horse battery")
    assert verify_password(second, "correct horse battery")
    assert not verify_password(first, "correct horse battery ")
    assert not verify_password(first, "")
    assert not needs_rehash(first)


def test_a_damaged_hash_refuses_instead_of_failing() -> None:
    assert not verify_password("not-a-hash", "whatever123")
    assert not verify_password("", "whatever123")
    assert not needs_rehash("not-a-hash")


# ---- tokens and CSRF ---------------------------------------------------------------------


def test_tokens_are_random_and_only_their_sha256_is_kept() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43  # 256 bits in URL-safe base64
    assert all(c.isalnum() or c in "-_" for c in token)
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hash(token) == token_hash(token)
    assert token_hash(token) != token_hash(tokens.pop())
    assert len(token_hash(token)) == 64


def test_secrets_compare_whole() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd")
    assert not same_secret("abc", "ab")
    assert same_secret("ääkkönen", "ääkkönen")  # not only ASCII


def test_the_csrf_header_must_repeat_the_cookie_issued_with_the_session() -> None:
    issued = new_token()
    kept = token_hash(issued)
    assert csrf_ok(issued, issued, kept)
    assert not csrf_ok(None, issued, kept)
    assert not csrf_ok("", issued, kept)
    assert not csrf_ok(issued, None, kept)
    assert not csrf_ok(issued, "", kept)
    other = new_token()
    assert not csrf_ok(issued, other, kept)
    # A pair planted by someone else (cookie tossing) is not this session's token.
    assert not csrf_ok(other, other, kept)
    assert not csrf_ok("x" * 500, "x" * 500, token_hash("x" * 500))


# ---- throttling --------------------------------------------------------------------------


def test_five_failures_lock_the_username_and_address_for_a_minute() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    key = throttle.key("anna", "10.0.0.1")
    for _ in range(4):
        assert throttle.wait(key) == 0
        assert throttle.failed(key) == 0
        clock.now += 1
    assert throttle.failed(key) == 60
    clock.now += 59
    assert throttle.wait(key) == pytest.approx(1)
    clock.now += 1
    assert throttle.wait(key) == 0
    # After the wait another five tries, then the lock again.
    for _ in range(4):
        assert throttle.failed(key) == 0
    assert throttle.failed(key) == 60


def test_the_lock_is_per_username_and_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    key = throttle.key("anna", "10.0.0.1")
    for _ in range(5):
        throttle.failed(key)
    assert throttle.wait(key) > 0
    assert throttle.wait(throttle.key(" ANNA ", "10.0.0.1")) > 0  # the same account
    assert throttle.wait(throttle.key("anna", "10.0.0.2")) == 0
    assert throttle.wait(throttle.key("bertta", "10.0.0.1")) == 0


def test_a_success_clears_the_failures_and_old_failures_expire() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock, window=900)
    key = throttle.key("anna", "10.0.0.1")
    for _ in range(4):
        throttle.failed(key)
    throttle.succeeded(key)
    assert throttle.failed(key) == 0  # counting starts again
    for _ in range(3):
        throttle.failed(key)
    clock.now += 901  # the four failures are too old to count together
    assert throttle.failed(key) == 0


def test_the_throttle_keeps_a_bounded_number_of_keys() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock, max_keys=10)
    locked = throttle.key("anna", "10.0.0.1")
    for _ in range(5):
        throttle.failed(locked)
    for i in range(50):
        throttle.failed(throttle.key(f"user{i}", "10.0.0.9"))
    assert len(throttle._failures) <= 10


# ---- accounts and permissions ------------------------------------------------------------


def agent(*queues: str, disabled: bool = False) -> StaffUser:
    return StaffUser(id=1, username="anna", role="agent", queues=queues, disabled=disabled)


def test_an_agent_sees_their_own_queues_and_an_admin_all() -> None:
    housing = agent("housing")
    assert can_see(housing, "housing")
    assert not can_see(housing, "general")
    assert not can_see(housing, "")
    assert not can_see(agent(), "general")
    two = agent("housing", "social")
    assert [q.name for q in visible_queues(two, DEFAULT_QUEUES)] == ["housing", "social"]
    admin = StaffUser(id=2, username="boss", role="admin")
    assert all(can_see(admin, q.name) for q in DEFAULT_QUEUES)
    assert visible_queues(admin, DEFAULT_QUEUES) == DEFAULT_QUEUES
    assert not can_see(agent("housing", disabled=True), "housing")


def test_usernames_are_case_insensitive_and_plain() -> None:
    assert normalize_username("  Anna.Virtanen ") == "anna.virtanen"
    assert username_problem("anna.virtanen") is None
    assert username_problem("anna@kunta.fi") is None
    for bad in ("", "-anna", "anna virtanen", "Anna", "ä", "x" * 65, "anna\n"):
        assert username_problem(bad) is not None, bad


def test_a_session_ends_after_8_hours_idle_or_24_hours_in_all() -> None:
    policy = SessionPolicy()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def alive(last_seen: timedelta, now: timedelta) -> bool:
        return policy.alive(created_at=start, last_seen_at=start + last_seen, now=start + now)

    assert alive(timedelta(0), timedelta(hours=7, minutes=59))
    assert not alive(timedelta(0), timedelta(hours=8))
    assert alive(timedelta(hours=16), timedelta(hours=23))
    assert not alive(timedelta(hours=23, minutes=59), timedelta(hours=24))
