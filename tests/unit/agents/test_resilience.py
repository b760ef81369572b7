"""The circuit breaker, backoff and retries on a fake clock with a seeded random source."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.resilience import (
    BreakerChange,
    CircuitBreaker,
    Retry,
    backoff_delays,
    call_with_retries,
    retry_after_hint,
    retry_after_seconds,
    retry_delay,
    status_is_retryable,
)


@dataclass
class FakeClock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# ---- circuit breaker ----------------------------------------------------------------------


def run_events(breaker: CircuitBreaker, clock: FakeClock, events: str) -> list[str]:
    """Events: f = a call that fails, s = one that succeeds (each only when allowed),
    a = allow() alone (a trial that never reports), w = 10 s pass. Returns the states."""
    states: list[str] = []
    for event in events:
        if event == "w":
            clock.advance(10)
        elif event == "a":
            breaker.allow()
        elif breaker.allow():
            if event == "f":
                breaker.failure()
            else:
                breaker.success()
        states.append(breaker.state)
    return states


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ("", "closed"),
        ("ff", "closed"),
        ("fff", "open"),
        ("ffsff", "closed"),  # a success in between starts the count again
        ("ffsfff", "open"),
        ("fffw", "open"),  # 10 s of the 30
        ("fffwww", "half_open"),
        ("fffwwws", "closed"),
        ("fffwwwf", "open"),  # the trial failed: open again
        ("fffwwwfww", "open"),  # the timer restarted at the failed trial
        ("fffwwwfwww", "half_open"),
        ("fffwwwfwwws", "closed"),
        ("fffssss", "open"),  # calls are refused while open: nothing changes
        ("fffwwwafs", "half_open"),  # the lost trial holds the slot for `reset` seconds
        ("fffwwwawwwf", "open"),  # then the next trial may go
        ("fffwwwsff", "closed"),
        ("fffwwwsfff", "open"),
    ],
)
def test_breaker_states(events: str, final: str) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, 30, clock=clock)
    assert run_events(breaker, clock, events)[-1:] == ([final] if events else [])
    assert breaker.state == final


def test_half_open_allows_exactly_one_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2, 30, clock=clock)
    breaker.failure()
    breaker.failure()
    assert [breaker.allow() for _ in range(3)] == [False, False, False]
    clock.advance(30)
    assert breaker.state == "half_open"
    assert [breaker.allow() for _ in range(4)] == [True, False, False, False]
    breaker.success()
    assert breaker.changes[-1].new == "closed"
    assert all(breaker.allow() for _ in range(5))


def test_released_trial_lets_the_next_one_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 5, clock=clock)
    breaker.failure()
    clock.advance(5)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_changes_say_what_happened() -> None:
    clock = FakeClock()
    heard: list[BreakerChange] = []
    breaker = CircuitBreaker(5, 30, clock=clock, on_change=heard.append)
    for _ in range(5):
        assert breaker.allow()
        breaker.failure()
    assert breaker.open_until == 1030.0
    clock.advance(30)
    assert breaker.allow()
    breaker.success()
    assert [(c.old, c.new) for c in breaker.changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert heard == list(breaker.changes)
    assert heard[0].reason == (
        "the model endpoint failed 5 times in a row; the fallback answers for 30 s"
    )
    assert heard[0].at == 1000.0
    assert heard[1].at == 1030.0
    assert breaker.open_until is None


def test_breaker_from_settings() -> None:
    from router.settings import Settings

    breaker = CircuitBreaker.from_settings(Settings(llm_breaker_failures=2, llm_breaker_reset=7))
    assert (breaker.failures, breaker.reset) == (2, 7)


@pytest.mark.parametrize(("failures", "reset"), [(0, 30), (3, 0), (3, -1)])
def test_breaker_refuses_nonsense(failures: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures, reset)


@settings(max_examples=300, deadline=None)
@given(
    failures=st.integers(1, 6),
    events=st.lists(
        st.one_of(
            st.sampled_from(["ok", "fail", "lost"]),
            st.floats(0, 40, allow_nan=False),
        ),
        max_size=60,
    ),
)
def test_breaker_is_open_only_after_n_consecutive_failures(
    failures: int, events: list[str | float]
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures, 20, clock=clock)
    since_success = 0  # failures reported since the last reported success
    for event in events:
        before = breaker.state
        if isinstance(event, float):
            clock.advance(event)
        elif breaker.allow():
            if event == "ok":
                breaker.success()
                since_success = 0
            elif event == "fail":
                breaker.failure()
                since_success += 1
        else:
            assert before == "open" or before == "half_open"
        state = breaker.state
        assert state in ("closed", "open", "half_open")
        if state == "closed":
            assert since_success < failures
            assert breaker.consecutive_failures == since_success
            assert breaker.allow()
        else:
            assert since_success >= failures
        if state == "open":
            assert not breaker.allow()
            assert breaker.open_until is not None and breaker.open_until > clock.now
        if before == "closed" and since_success == failures and event == "fail":
            assert state == "open"
    for change in breaker.changes:
        assert (change.old, change.new) in {
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
            ("half_open", "open"),
        }


# ---- backoff ------------------------------------------------------------------------------


def test_backoff_is_full_jitter_within_the_cap() -> None:
    delays = backoff_delays(6, 0.5, 4.0, random.Random(7))
    assert len(delays) == 6
    for i, delay in enumerate(delays):
        assert 0 <= delay <= min(4.0, 0.5 * 2**i)
    assert delays == backoff_delays(6, 0.5, 4.0, random.Random(7))
    assert delays != backoff_delays(6, 0.5, 4.0, random.Random(8))
    assert backoff_delays(0, 0.5, 4.0, random.Random(7)) == []
    assert max(backoff_delays(2000, 1.0, 3.0, random.Random(1))) <= 3.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str] | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(headers, now=now) == seconds


def test_retry_after_from_an_openai_error() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx2.Response(429, headers={"Retry-After": "2"}, request=request)
    error = openai.RateLimitError("slow down", response=response, body=None)
    assert retry_after_hint(error) == 2.0
    # The HTTP-date form, as some proxies in front of a model send it.
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    dated = httpx2.Response(503, headers={"Retry-After": later}, request=request)
    hint = retry_after_hint(openai.InternalServerError("busy", response=dated, body=None))
    assert hint is not None and 27 <= hint <= 30
    assert retry_after_hint(openai.APIConnectionError(request=request)) is None
    assert retry_after_hint(ValueError("x")) is None
    assert retry_after_hint(RuntimeError()) is None


def test_retry_delay_honours_the_server_within_the_cap() -> None:
    assert retry_delay(0.3, None, cap=5) == 0.3
    assert retry_delay(0.3, 2.0, cap=5) == 2.0
    assert retry_delay(0.3, 120.0, cap=5) == 5.0
    assert retry_delay(0.9, 0.1, cap=5) == 0.9  # never sooner than our own jittered wait


@pytest.mark.parametrize(
    ("status", "retry"),
    [(200, False), (400, False), (401, False), (404, False), (408, True), (409, True),
     (422, False), (429, True), (500, True), (502, True), (503, True), (504, True)],
)  # fmt: skip
def test_status_is_retryable(status: int, retry: bool) -> None:
    assert status_is_retryable(status) is retry


# ---- retries ------------------------------------------------------------------------------


class Flaky(Exception):
    def __init__(self, n: int, retry_after: str | None = None) -> None:
        super().__init__(f"failure {n}")
        headers = {"retry-after": retry_after} if retry_after else {}
        self.response = SimpleNamespace(headers=headers)


class Script:
    """A call that raises the given errors in turn, then returns "answer"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def is_flaky(error: Exception) -> bool:
    return isinstance(error, Flaky | TimeoutError)


async def test_succeeds_after_retryable_errors_with_the_given_waits() -> None:
    clock = FakeClock()
    call = Script(Flaky(1), Flaky(2))
    heard: list[Retry] = []
    result = await call_with_retries(
        call,
        retries=2,
        is_retryable=is_flaky,
        deadline=clock.now + 10,
        clock=clock,
        sleep=clock.sleep,
        delays=[0.2, 0.7],
        on_retry=heard.append,
    )
    assert result == "answer"
    assert call.calls == 3
    assert clock.slept == [0.2, 0.7]
    assert [(r.attempt, r.delay, str(r.error)) for r in heard] == [
        (1, 0.2, "failure 1"),
        (2, 0.7, "failure 2"),
    ]


async def test_out_of_tries_raises_the_last_error() -> None:
    clock = FakeClock()
    last = Flaky(3)
    call = Script(Flaky(1), Flaky(2), last)
    with pytest.raises(Flaky) as raised:
        await call_with_retries(
            call, retries=2, is_retryable=is_flaky, deadline=clock.now + 10, clock=clock,
            sleep=clock.sleep, delays=[0.1, 0.1],
        )  # fmt: skip
    assert raised.value is last
    assert call.calls == 3


async def test_non_retryable_error_raises_at_once() -> None:
    clock = FakeClock()
    call = Script(ValueError("bad request"))
    with pytest.raises(ValueError, match="bad request"):
        await call_with_retries(
            call, retries=5, is_retryable=is_flaky, deadline=clock.now + 10, clock=clock,
            sleep=clock.sleep, delays=[0.1],
        )  # fmt: skip
    assert call.calls == 1
    assert clock.slept == []


async def test_retries_stop_at_the_deadline() -> None:
    clock = FakeClock()
    call = Script(Flaky(1), Flaky(2), Flaky(3), Flaky(4))
    with pytest.raises(Flaky, match="failure 3"):
        await call_with_retries(
            call, retries=5, is_retryable=is_flaky, deadline=clock.now + 3.5, clock=clock,
            sleep=clock.sleep, delays=[1.0, 2.0, 4.0],
        )  # fmt: skip
    # 1 s, then 2 s (at 3 s); a 4 s wait would end past the deadline: not started.
    assert clock.slept == [1.0, 2.0]
    assert call.calls == 3
    assert clock.now <= 1003.5


async def test_a_wait_ending_on_the_deadline_is_not_started() -> None:
    clock = FakeClock()
    call = Script(Flaky(1))
    with pytest.raises(Flaky):
        await call_with_retries(
            call, retries=3, is_retryable=is_flaky, deadline=clock.now + 1.0, clock=clock,
            sleep=clock.sleep, delays=[1.0],
        )  # fmt: skip
    assert clock.slept == []


async def test_retry_after_is_honoured_and_capped() -> None:
    clock = FakeClock()
    call = Script(Flaky(1, retry_after="3"), Flaky(2, retry_after="120"))
    result = await call_with_retries(
        call, retries=2, is_retryable=is_flaky, deadline=clock.now + 30, clock=clock,
        sleep=clock.sleep, delays=[0.1, 0.1], retry_after_cap=5.0,
    )  # fmt: skip
    assert result == "answer"
    assert clock.slept == [3.0, 5.0]


async def test_retry_after_past_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    call = Script(Flaky(1, retry_after="8"))
    with pytest.raises(Flaky):
        await call_with_retries(
            call, retries=2, is_retryable=is_flaky, deadline=clock.now + 6, clock=clock,
            sleep=clock.sleep, delays=[0.1], retry_after_cap=10,
        )  # fmt: skip
    assert clock.slept == []
    assert call.calls == 1


async def test_no_time_left_means_no_call() -> None:
    clock = FakeClock()
    call = Script()
    with pytest.raises(TimeoutError):
        await call_with_retries(
            call, retries=2, is_retryable=is_flaky, deadline=clock.now, clock=clock,
            sleep=clock.sleep,
        )  # fmt: skip
    assert call.calls == 0


async def test_default_delays_are_jittered_backoff() -> None:
    clock = FakeClock()
    call = Script(Flaky(1), Flaky(2))
    assert await call_with_retries(
        call, retries=2, is_retryable=is_flaky, deadline=clock.now + 60, clock=clock,
        sleep=clock.sleep,
    ) == "answer"  # fmt: skip
    assert len(clock.slept) == 2
    assert 0 <= clock.slept[0] <= 0.5
    assert 0 <= clock.slept[1] <= 1.0


async def test_a_hanging_try_is_cut_off_and_retried() -> None:
    # Real time, briefly: the cut-off is the event loop's own timeout.
    tries = 0

    async def hangs_once() -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            await asyncio.sleep(10)
        return "answer"

    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await call_with_retries(
        hangs_once, retries=1, is_retryable=is_flaky, deadline=started + 5,
        clock=loop.time, attempt_timeout=0.05, delays=[0.0],
    )  # fmt: skip
    assert result == "answer"
    assert tries == 2
    assert loop.time() - started < 1.0


async def test_the_deadline_cuts_off_a_hanging_try() -> None:
    async def hangs() -> str:
        await asyncio.sleep(10)
        return "never"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await call_with_retries(
            hangs, retries=3, is_retryable=is_flaky, deadline=started + 0.1, clock=loop.time,
            delays=[0.0],
        )  # fmt: skip
    assert loop.time() - started < 1.0


async def test_cancellation_is_not_retried() -> None:
    clock = FakeClock()

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call_with_retries(
            cancelled, retries=3, is_retryable=lambda e: True, deadline=clock.now + 10,
            clock=clock, sleep=clock.sleep, delays=[0.1],
        )  # fmt: skip
    assert clock.slept == []
