"""The inbound rate limiter: the sliding window, its expiry and memory bound, and admission."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import Item, OptOut, Parsed
from channels.email.intake import LIMITED_REASON, Outcome, Result
from channels.email.smtp_server import peer_host, smtp_reply
from channels.ratelimit import RateLimits, SlidingWindow, admit, pseudonym, refund
from router.events import Address, Channel, DeliveryReported, DeliveryStatus, MessageReceived


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sms(number: str, text: str = "Hei") -> MessageReceived:
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=f"SM{number}{text}",
        sender=Address(channel=Channel.SMS, value=number),
        text=text,
    )


def test_n_hits_are_allowed_then_the_next_waits_until_the_oldest_is_a_window_old() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60, clock=clock)
    for _ in range(3):
        assert window.hit("a").allowed
        clock.now += 10
    refused = window.hit("a")  # 30 s after the first
    assert not refused.allowed
    assert refused.wait == pytest.approx(30)
    assert refused.retry_after == 30
    assert refused.first
    assert not window.hit("a").first  # only the first refusal is worth a log line
    assert window.hit("b").allowed  # another key is not affected
    clock.now += 29.5
    assert window.hit("a").retry_after == 1  # rounded up, never 0 while refused
    clock.now += 0.5
    assert window.hit("a").allowed  # the first hit is now a window old
    assert not window.hit("a").allowed  # the other two are not


def test_refused_hits_are_not_counted() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60, clock=clock)
    assert window.hit("a").allowed and window.hit("a").allowed
    for _ in range(50):  # a sender retrying all the time
        clock.now += 1
        window.hit("a")
    clock.now = 1000 + 60
    assert window.hit("a").allowed


def test_a_zero_limit_is_off_and_keeps_nothing() -> None:
    window = SlidingWindow(0)
    assert all(window.hit(f"k{i % 3}").allowed for i in range(1000))
    assert len(window) == 0
    limits = RateLimits()
    assert not limits.on
    assert limits.sender("sms:+358401234567").allowed and limits.ip("192.0.2.1").allowed


def test_keys_idle_for_a_window_are_forgotten() -> None:
    clock = Clock()
    window = SlidingWindow(5, 60, clock=clock)
    for i in range(100):
        window.hit(f"sender-{i}")
    assert len(window) == 100
    clock.now += 60
    window.hit("late")
    assert len(window) == 1


def test_memory_is_bounded_by_max_keys_the_longest_unused_go_first() -> None:
    clock = Clock()
    window = SlidingWindow(2, 60, max_keys=100, clock=clock)
    window.hit("busy")
    window.hit("busy")
    for i in range(10_000):  # a million distinct senders in small
        window.hit(f"sender-{i}")
        assert len(window) <= 100
    assert window.hit("busy").allowed  # it went first: its limit is forgotten


def test_unhit_takes_back_the_newest_hit() -> None:
    clock = Clock()
    window = SlidingWindow(1, 60, clock=clock)
    assert window.hit("a").allowed
    window.unhit("a")
    assert window.hit("a").allowed
    assert not window.hit("a").allowed
    window.unhit("never-seen")  # nothing to take back: no error


def test_invalid_parameters_are_refused() -> None:
    for bad in ({"limit": -1}, {"limit": 1, "window": 0}, {"limit": 1, "max_keys": 0}):
        with pytest.raises(ValueError):
            SlidingWindow(**bad)  # type: ignore[arg-type]


def test_keys_are_namespaced_by_kind() -> None:
    clock = Clock()
    limits = RateLimits(per_sender=1, per_ip=1, clock=clock)
    assert limits.sender("192.0.2.1").allowed
    assert limits.ip("192.0.2.1").allowed  # not the sender of the same name
    assert not limits.ip("192.0.2.1").allowed
    assert limits.ip(None).allowed  # no client address: one shared key
    assert not limits.ip(None).allowed


def test_admit_leaves_out_messages_over_the_limit_and_never_receipts_or_opt_outs() -> None:
    clock = Clock()
    limits = RateLimits(per_sender=2, clock=clock)
    a, b = "+358401111111", "+358402222222"
    receipt = DeliveryReported(
        channel=Channel.SMS, provider_message_id="SM1", status=DeliveryStatus.DELIVERED
    )
    stop = OptOut(Address(channel=Channel.SMS, value=a), True, "SMstop")
    items: list[Item] = [sms(a, "1"), sms(a, "2"), sms(a, "3"), sms(b, "1"), receipt, stop]
    admission = admit(Parsed(items=tuple(items)), limits)
    assert admission.items == (items[0], items[1], items[3], receipt, stop)
    ((left_out, verdict),) = admission.limited
    assert left_out is items[2]
    assert admission.wait == verdict.wait == pytest.approx(60)
    # Could not be accepted after all: the hits are taken back for the provider's retry.
    refund(admission, limits)
    assert admit([sms(a, "1"), sms(a, "2")], limits).limited == ()


def test_admit_with_the_sender_limit_off_takes_everything() -> None:
    items = [sms("+358401111111", str(i)) for i in range(100)]
    assert admit(items, RateLimits(per_ip=1)).items == tuple(items)


def test_the_pseudonym_tells_senders_apart_without_showing_the_address() -> None:
    one = pseudonym(Address(channel=Channel.SMS, value="+358401234567"))
    other = pseudonym("sms:+358401234568")
    assert one.startswith("sms:#") and "358" not in one
    assert one != other
    assert one == pseudonym("sms:+358401234567")
    assert pseudonym("no-channel").startswith("?:#")


def test_a_limited_mail_is_answered_450_and_the_ip_is_read_from_the_peer() -> None:
    assert smtp_reply(Outcome(Result.LIMITED, LIMITED_REASON, 450)) == (
        "450 4.7.1 too many messages, try again later"
    )
    assert peer_host(("192.0.2.7", 25)) == "192.0.2.7"
    assert peer_host(("2001:db8::1", 25, 0, 0)) == "2001:db8::1"
    assert peer_host(None) == "unknown"


# ---- properties ---------------------------------------------------------------------------

# Whole-number times (exact in floats), steps of none (several hits at one instant) to more
# than a window.
LIMIT, WINDOW = 3, 100.0
events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.one_of(st.just(0), st.integers(0, 30), st.integers(0, 120)),
    ),
    max_size=200,
)


@given(events)
@settings(max_examples=200, deadline=None)
def test_never_more_than_the_limit_in_any_window_and_never_refused_below_it(
    steps: list[tuple[str, int]],
) -> None:
    clock = Clock(0.0)
    window = SlidingWindow(LIMIT, WINDOW, clock=clock)
    allowed: dict[str, list[float]] = {}
    for key, step in steps:
        clock.now += step
        mine = allowed.setdefault(key, [])
        # What a limit of N in any window means: the allowed hits in (now - W, now].
        recent = len(mine) - bisect.bisect_right(mine, clock.now - WINDOW)
        verdict = window.hit(key)
        assert verdict.allowed == (recent < LIMIT)
        if verdict.allowed:
            mine.append(clock.now)
        else:
            # Waiting that long is enough, and no shorter wait would be.
            assert verdict.wait == pytest.approx(mine[-LIMIT] + WINDOW - clock.now)
    for times in allowed.values():
        for i, start in enumerate(times):
            assert bisect.bisect_left(times, start + WINDOW) - i <= LIMIT


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(min_value=0, max_value=30)),
        max_size=300,
    ),
    st.integers(min_value=1, max_value=20),
)
@settings(max_examples=100, deadline=None)
def test_the_number_of_keys_held_never_exceeds_max_keys(
    steps: list[tuple[int, int]], max_keys: int
) -> None:
    clock = Clock(0.0)
    window = SlidingWindow(2, WINDOW, max_keys=max_keys, clock=clock)
    for key, step in steps:
        clock.now += step
        window.hit(str(key))
        assert len(window) <= max_keys
