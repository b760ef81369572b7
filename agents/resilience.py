"""Staying safe while the model endpoint fails: a circuit breaker, jittered backoff and
bounded retries.

Pure state and policy: the clock, the random source and the sleep are injected, and nothing
here does I/O of its own. The caller decides what a failure is (which errors are worth a
retry, when a message counts as failed for the breaker) and what to do while the circuit is
open (the offline agent or people answer).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, TypeVar

T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]


class BreakerSettings(Protocol):
    """What the breaker reads of ``router.settings.Settings``."""

    @property
    def llm_breaker_failures(self) -> int: ...
    @property
    def llm_breaker_reset(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BreakerChange:
    """One state change, with a sentence for the log."""

    at: float
    old: BreakerState
    new: BreakerState
    failures: int
    reason: str


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures; open for ``reset`` seconds
    (``allow()`` is False); then half-open: one trial call at a time, whose success closes the
    circuit and whose failure opens it again for another ``reset`` seconds.

    Use: ``if breaker.allow(): call, then success() or failure()``, else take the fallback.
    A trial that never reports (its task was cancelled) is given up after ``reset`` seconds so
    the circuit cannot stay half-open for good; ``release()`` gives it up at once. Outcomes
    reported while the circuit is open come from calls started before it opened and change
    nothing.
    """

    def __init__(
        self,
        failures: int,
        reset: float,
        *,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerChange], None] | None = None,
        history: int = 50,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if not reset > 0:
            raise ValueError("reset must be positive")
        self.failures = failures
        self.reset = reset
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_started: float | None = None
        self._changes: deque[BreakerChange] = deque(maxlen=history)

    @classmethod
    def from_settings(
        cls,
        settings: BreakerSettings,
        *,
        clock: Clock = time.monotonic,
        on_change: Callable[[BreakerChange], None] | None = None,
    ) -> CircuitBreaker:
        return cls(
            settings.llm_breaker_failures,
            settings.llm_breaker_reset,
            clock=clock,
            on_change=on_change,
        )

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() >= self._opened_at + self.reset:
            self._change("half_open", f"{self.reset:g} s passed; one trial call may try the model")
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    @property
    def open_until(self) -> float | None:
        """When an open circuit lets a trial through (clock time), or None when not open."""
        return self._opened_at + self.reset if self.state == "open" else None

    @property
    def changes(self) -> tuple[BreakerChange, ...]:
        """The latest state changes, oldest first."""
        return tuple(self._changes)

    def allow(self) -> bool:
        """May a call go to the model now? In half-open, True for one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_started is not None and now < self._trial_started + self.reset:
            return False
        self._trial_started = now
        return True

    def success(self) -> None:
        state = self.state
        if state == "open":
            return
        self._consecutive = 0
        self._trial_started = None
        if state == "half_open":
            self._change("closed", "the trial call succeeded; the model answers again")

    def failure(self) -> None:
        state = self.state
        if state == "open":
            return
        self._consecutive += 1
        self._trial_started = None
        if state == "half_open":
            self._open(f"the trial call failed; the fallback answers for {self.reset:g} s more")
        elif self._consecutive >= self.failures:
            self._open(
                f"the model endpoint failed {self._consecutive} times in a row; "
                f"the fallback answers for {self.reset:g} s"
            )

    def release(self) -> None:
        """The trial call ended without an outcome (cancelled): let another one try."""
        self._trial_started = None

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._change("open", reason)

    def _change(self, new: BreakerState, reason: str) -> None:
        old, self._state = self._state, new
        change = BreakerChange(self._clock(), old, new, self._consecutive, reason)
        self._changes.append(change)
        if self._on_change is not None:
            self._on_change(change)


# ---- backoff ------------------------------------------------------------------------------


def backoff_delays(retries: int, base: float, cap: float, rng: random.Random) -> list[float]:
    """Full-jitter exponential backoff: wait ``i`` is uniform in [0, min(cap, base·2^i)].

    Random waits keep many workers from retrying against a struggling endpoint in step.
    """
    # The exponent is bounded so a large ``retries`` cannot overflow the float.
    return [rng.uniform(0.0, min(cap, base * 2.0 ** min(i, 64))) for i in range(max(retries, 0))]


def retry_after_seconds(
    headers: Mapping[str, str] | None, *, now: datetime | None = None
) -> float | None:
    """The server's wish, in seconds: ``retry-after-ms`` (OpenAI, Azure), then
    ``retry-after`` as seconds, or as an HTTP date when ``now`` (aware) is given.

    Header names are matched without regard to case; unusable values give None.
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value.strip()) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    value = lowered.get("retry-after")
    if value is None or now is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None or now.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def retry_after_hint(error: BaseException) -> float | None:
    """``Retry-After`` of an error that carries its HTTP response (``openai.APIStatusError``
    has ``.response.headers``); None for any other error."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if not isinstance(headers, Mapping):
        return None
    return retry_after_seconds(headers, now=datetime.now(UTC))


def retry_delay(jittered: float, retry_after: float | None, *, cap: float) -> float:
    """The wait before the next try: the server's ``Retry-After`` when it gives one, at most
    ``cap``, and never less than our own jittered wait."""
    if retry_after is None:
        return jittered
    return max(jittered, min(retry_after, cap))


def status_is_retryable(status: int) -> bool:
    """HTTP statuses worth another try: timeouts, conflicts, rate limits, server errors."""
    return status in (408, 409, 425, 429) or status >= 500


# ---- retries ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed try that will be retried: its number (from 1), the wait, and the error."""

    attempt: int
    delay: float
    error: Exception


DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_CAP = 4.0
DEFAULT_RETRY_AFTER_CAP = 10.0


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    is_retryable: Callable[[Exception], bool],
    deadline: float,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    delays: Sequence[float] | None = None,
    retry_after: Callable[[Exception], float | None] = retry_after_hint,
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
    attempt_timeout: float | None = None,
    on_retry: Callable[[Retry], None] | None = None,
) -> T:
    """``await call()``, again after a wait on errors ``is_retryable`` accepts, at most
    ``retries`` more times, and never past ``deadline`` (on ``clock``; the whole message has
    NEUVONTA_AGENT_TIMEOUT).

    Each try is cut off at the deadline (or after ``attempt_timeout``) with ``TimeoutError``.
    A wait that would end at or after the deadline is not started: the last error is raised
    at once, as it is when the tries are used up or the error is not retryable. Waits are
    ``delays`` (default: full-jitter backoff), lengthened to the server's ``Retry-After``
    (``retry_after(error)``), capped at ``retry_after_cap``. ``on_retry`` hears of each retry
    (for the log). Cancellation is never caught.
    """
    if delays is None:
        delays = backoff_delays(retries, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, random.Random())
    last: Exception | None = None
    attempt = 0
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            if last is not None:
                raise last
            raise TimeoutError("the deadline passed before the model was called")
        limit = remaining if attempt_timeout is None else min(attempt_timeout, remaining)
        try:
            async with asyncio.timeout(limit):
                return await call()
        except Exception as error:
            if attempt >= retries or not is_retryable(error):
                raise
            jittered = delays[min(attempt, len(delays) - 1)] if delays else 0.0
            delay = retry_delay(max(jittered, 0.0), retry_after(error), cap=retry_after_cap)
            if clock() + delay >= deadline:
                raise
            last = error
        attempt += 1
        if on_retry is not None:
            on_retry(Retry(attempt, delay, last))
        await sleep(delay)
