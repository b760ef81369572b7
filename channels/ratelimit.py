"""Inbound rate limits: messages per sender and requests per client IP, per minute.

- ``SlidingWindow`` is the pure core: at most ``limit`` hits per key in any ``window``
  seconds (a sliding log: each key keeps the times of its last ``limit`` allowed hits, so the
  bound is exact, with no burst at a window's edge). A refused hit is not counted: a sender
  that retries (an SMTP server after 450) gets through as soon as its oldest hit is a window
  old. The clock is injected (``time.monotonic`` by default).
- Memory is bounded: a key whose newest hit is a window old is forgotten (its state is the
  same as none), and at most ``max_keys`` keys are held; past that, the key used longest ago
  goes (which forgets its limit: only a flood of ``max_keys`` distinct live keys within one
  window can cause that, and the per-IP limit is what stands against such a flood).
- ``RateLimits`` holds the two limits of a gateway process (``NEUVONTA_RATE_LIMIT_SENDER``
  and ``NEUVONTA_RATE_LIMIT_IP``; 0: off) under the keys ``sender:<address>`` (the typed
  address string: ``web:<session id>``, ``sms:+358…``, ``telegram:<chat id>``,
  ``email:a@b.fi``) and ``ip:<client address>``.

The limits live in the memory of one gateway process: with N gateway processes behind a
load balancer a sender may get up to N times the limit through. A shared limit (a NATS KV
bucket or Redis, keyed the same way) is future work.

The client IP of an HTTP request is ``request.client.host``, as the console's sign-in
throttle uses it: uvicorn replaces it with the ``X-Forwarded-For`` address only when the
connection comes from a trusted proxy (``FORWARDED_ALLOW_IPS``, default 127.0.0.1 and ::1),
so a client cannot choose its own key. Behind a proxy that is not trusted so, every resident
has the proxy's address and the per-IP limit counts them all together.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from channels.base import Item, Parsed
from router.events import Address, MessageReceived

if TYPE_CHECKING:
    from router.settings import Settings

WINDOW: Final = 60.0
# Senders and addresses active within one window; ~1 KB each at 20 hits a minute.
MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Verdict:
    # Seconds until the key may try again; 0: allowed (and counted).
    wait: float = 0.0
    # The first refusal since the key was last allowed: the one worth a log line (a flood
    # would otherwise write one line per refused request).
    first: bool = False

    @property
    def allowed(self) -> bool:
        return self.wait <= 0

    @property
    def retry_after(self) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1 when refused)."""
        return 0 if self.allowed else max(1, math.ceil(self.wait))


ALLOWED: Final = Verdict()


class _Key:
    __slots__ = ("hits", "warned")

    def __init__(self, limit: int) -> None:
        self.hits: deque[float] = deque(maxlen=limit)
        self.warned = False


class SlidingWindow:
    """At most ``limit`` allowed hits per key in any ``window`` seconds (0: no limit)."""

    def __init__(
        self,
        limit: int,
        window: float = WINDOW,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 0 or window <= 0 or max_keys < 1:
            raise ValueError("limit >= 0, window > 0 and max_keys >= 1")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        # Ordered by each key's newest allowed hit, oldest first: expiry pops from the front.
        self._keys: OrderedDict[str, _Key] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def hit(self, key: str) -> Verdict:
        """Count a hit for ``key`` if it is allowed now; else how long to wait."""
        if not self.limit:
            return ALLOWED
        now = self._clock()
        self._expire(now)
        state = self._keys.get(key)
        if state is None:
            state = _Key(self.limit)
        hits = state.hits
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            first = not state.warned
            state.warned = True
            return Verdict(wait=hits[0] + self.window - now, first=first)
        hits.append(now)
        state.warned = False
        self._keys[key] = state
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return ALLOWED

    def unhit(self, key: str) -> None:
        """Take back ``key``'s newest allowed hit: what it was for did not happen (the bus was
        down and the provider will deliver it again), and the retry must not count twice."""
        state = self._keys.get(key)
        if state is not None and state.hits:
            state.hits.pop()

    def _expire(self, now: float) -> None:
        while self._keys:
            state = next(iter(self._keys.values()))
            if state.hits and now - state.hits[-1] < self.window:
                return
            self._keys.popitem(last=False)


class RateLimits:
    """The per-sender and per-IP limits of one gateway process (0: that limit is off)."""

    def __init__(
        self,
        *,
        per_sender: int = 0,
        per_ip: int = 0,
        window: float = WINDOW,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.senders = SlidingWindow(per_sender, window, max_keys=max_keys, clock=clock)
        self.ips = SlidingWindow(per_ip, window, max_keys=max_keys, clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(per_sender=settings.rate_limit_sender, per_ip=settings.rate_limit_ip)

    @property
    def on(self) -> bool:
        return bool(self.senders.limit or self.ips.limit)

    def sender(self, address: Address | str) -> Verdict:
        return self.senders.hit(f"sender:{address}")

    def ip(self, host: str | None) -> Verdict:
        return self.ips.hit(f"ip:{host or 'unknown'}")

    def refund(self, address: Address | str) -> None:
        self.senders.unhit(f"sender:{address}")


@dataclass(frozen=True, slots=True)
class Admission:
    """What may go on to the inbox, and the messages left out (their senders were over the
    limit). ``wait``: the longest any of those senders must wait."""

    items: tuple[Item, ...]
    limited: tuple[tuple[MessageReceived, Verdict], ...] = ()

    @property
    def wait(self) -> float:
        return max((v.wait for _, v in self.limited), default=0.0)


def admit(parsed: Parsed | Iterable[Item], limits: RateLimits) -> Admission:
    """Leave out the resident messages whose sender is over the limit. Receipts and
    opt-outs are never limited (STOP must always work)."""
    items = parsed.items if isinstance(parsed, Parsed) else tuple(parsed)
    if not limits.senders.limit:
        return Admission(items)
    kept: list[Item] = []
    limited: list[tuple[MessageReceived, Verdict]] = []
    for item in items:
        if isinstance(item, MessageReceived):
            verdict = limits.sender(item.sender)
            if not verdict.allowed:
                limited.append((item, verdict))
                continue
        kept.append(item)
    return Admission(tuple(kept), tuple(limited))


def refund(admission: Admission, limits: RateLimits) -> None:
    """Take back the hits ``admit`` counted for the messages it let through, when they could
    not be taken in after all (the provider retries them)."""
    if not limits.senders.limit:
        return
    for item in admission.items:
        if isinstance(item, MessageReceived):
            limits.refund(item.sender)


def pseudonym(address: Address | str) -> str:
    """An address as logs may show it: the channel and a short hash, enough to tell one
    sender's refusals from another's without writing a phone number or email into the log."""
    text = str(address)
    channel = text.partition(":")[0] if ":" in text else "?"
    return f"{channel}:#{hashlib.sha256(text.encode()).hexdigest()[:10]}"
