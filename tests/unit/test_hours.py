"""Working hours: when a queue opens next, when a first response falls due, and what the
resident is told, in Finnish local time (Europe/Helsinki, UTC+2 in winter, +3 in summer)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from handoff.hours import (
    Span,
    WorkingHours,
    add_open_time,
    availability,
    is_open,
    next_opening,
)
from handoff.queues import DEFAULT_QUEUES, queue_availability
from router.phrases import handoff_ack

HKI = ZoneInfo("Europe/Helsinki")
OFFICE = WorkingHours()  # Monday to Friday 8–16
INDEPENDENCE_DAY = date(2027, 12, 6)  # a Monday


def hki(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=HKI)


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        # 2026-12-01 is a Tuesday.
        (hki(2026, 12, 1, 9), hki(2026, 12, 1, 9)),  # open: now
        (hki(2026, 12, 1, 8), hki(2026, 12, 1, 8)),  # the opening minute is open
        (hki(2026, 12, 1, 16), hki(2026, 12, 2, 8)),  # the closing minute is not
        (hki(2026, 12, 1, 7, 59), hki(2026, 12, 1, 8)),
        (hki(2026, 12, 1, 23, 30), hki(2026, 12, 2, 8)),
        (hki(2026, 12, 4, 16, 1), hki(2026, 12, 7, 8)),  # Friday evening → Monday
        (hki(2026, 12, 5, 12), hki(2026, 12, 7, 8)),  # Saturday
        (hki(2026, 12, 6, 23, 59), hki(2026, 12, 7, 8)),  # Sunday night
        # Summer time: 8.00 local is 05.00 UTC (winter: 06.00 UTC).
        (datetime(2026, 6, 1, 4, 30, tzinfo=UTC), hki(2026, 6, 1, 8)),
        (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), hki(2026, 12, 1, 8)),
        # The weekend the clocks go forward (Sunday 29 March 2026, 03.00 → 04.00).
        (hki(2026, 3, 28, 12), hki(2026, 3, 30, 8)),
    ],
)
def test_next_opening_in_helsinki_time(now: datetime, opens: datetime) -> None:
    found = next_opening(OFFICE, now)
    assert found == opens
    assert found is not None and found.tzinfo is not None
    assert found.utcoffset() == opens.utcoffset()  # local time, not UTC
    assert is_open(OFFICE, now) == (found == now)


def test_closed_dates_and_closed_weekdays_are_skipped() -> None:
    holidays = WorkingHours(closed_dates=(INDEPENDENCE_DAY,))
    # Friday evening before Independence Day Monday: Tuesday morning.
    assert next_opening(holidays, hki(2027, 12, 3, 17)) == hki(2027, 12, 7, 8)
    assert not is_open(holidays, hki(2027, 12, 6, 10))
    saturdays = WorkingHours(week=(None,) * 5 + (Span(opens=time(10), closes=time(14)), None))
    assert next_opening(saturdays, hki(2026, 12, 1, 9)) == hki(2026, 12, 5, 10)
    assert next_opening(WorkingHours(week=(None,) * 7), hki(2026, 12, 1)) is None


def test_an_always_open_queue_is_open_at_midnight_and_on_sundays() -> None:
    always = WorkingHours.always()
    for at in (hki(2026, 12, 6, 0), hki(2026, 12, 6, 23, 59), hki(2026, 3, 29, 4, 30)):
        assert is_open(always, at)
    # 24 hours of open time over the spring-forward night: 24 real hours.
    start = hki(2026, 3, 28, 12)
    due = add_open_time(always, start, timedelta(hours=24))
    assert due.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)
    assert due == hki(2026, 3, 29, 13)  # wall clock moved an hour more


@pytest.mark.parametrize(
    ("start", "target", "due"),
    [
        (hki(2026, 12, 1, 9), timedelta(hours=4), hki(2026, 12, 1, 13)),
        (hki(2026, 12, 1, 14), timedelta(hours=4), hki(2026, 12, 2, 10)),
        (hki(2026, 12, 4, 15), timedelta(hours=4), hki(2026, 12, 7, 11)),  # over a weekend
        (hki(2026, 12, 5, 11), timedelta(hours=1), hki(2026, 12, 7, 9)),  # opened on Saturday
        (hki(2026, 12, 1, 20), timedelta(hours=8), hki(2026, 12, 2, 16)),  # one working day
    ],
)
def test_a_first_response_falls_due_after_open_time(
    start: datetime, target: timedelta, due: datetime
) -> None:
    assert add_open_time(OFFICE, start, target) == due


def test_spans_must_close_after_they_open() -> None:
    with pytest.raises(ValueError, match="closes after it opens"):
        Span(opens=time(16), closes=time(8))
    with pytest.raises(ValueError):
        WorkingHours(week=(None,) * 6)
    with pytest.raises(ValueError):
        WorkingHours(timezone="Europe/Nowhere")


@pytest.mark.parametrize(
    ("language", "now", "expected"),
    [
        ("fi", hki(2026, 12, 1, 9), "Pyrimme vastaamaan viimeistään tänään klo 13.00."),
        ("sv", hki(2026, 12, 1, 14), "Vi strävar efter att svara senast i morgon kl. 10.00."),
        ("en", hki(2026, 12, 4, 15), "We aim to answer by 11:00 on Monday 7 December."),
        ("fi", hki(2026, 12, 1, 22), "Palvelu on nyt suljettu, ja se avautuu huomenna klo 8.00."),
        ("fi", hki(2026, 12, 5, 10), "se avautuu maanantaina 7.12. klo 8.00."),
        ("sv", hki(2026, 12, 5, 10), "Tjänsten är stängd nu och öppnar måndag den 7 december kl."),
        ("en", hki(2026, 12, 5, 10), "The service is closed now and opens at 8:00 on Monday"),
    ],
)
def test_the_acknowledgement_says_when_a_person_answers(
    language: str, now: datetime, expected: str
) -> None:
    text = handoff_ack(
        language,
        "NV-7K4Q-X2M9",
        urgent=False,
        availability=availability(OFFICE, timedelta(hours=4), now),
    )
    assert "NV-7K4Q-X2M9" in text
    assert expected in text
    closed = not is_open(OFFICE, now)
    leave_details = {"fi": "Voit jo nyt kirjoittaa", "sv": "Du kan redan nu", "en": "You may"}
    assert (leave_details[language] in text) == closed


def test_the_router_hook_uses_each_queues_own_hours() -> None:
    of = queue_availability(DEFAULT_QUEUES)
    saturday = hki(2026, 12, 5, 10)
    found = of("housing", saturday)
    assert found is not None and not found.open_now and found.at == hki(2026, 12, 7, 8)
    assert of("no-such-queue", saturday) == of("general", saturday)
    # Unknown hours: the plain acknowledgement, without a promise.
    plain = handoff_ack("fi", "NV-1", urgent=True, availability=None)
    assert plain.startswith("Jos kyse on hätätilanteesta")
    assert "Pyrimme" not in plain and "suljettu" not in plain
