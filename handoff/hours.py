"""Working hours of a queue and the times that follow from them.

Pure: the current time is always an argument, so tests pass any clock. Hours are local
wall-clock times in the queue's zone (Europe/Helsinki by default): 8.00 stays 8.00 across the
daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.phrases import Availability

# How far ahead to look for an opening: a queue closed longer than this counts as closed.
HORIZON_DAYS = 400
MIDNIGHT = time(0)


class Span(BaseModel):
    """Open from ``opens`` to ``closes`` on one day; ``closes`` 00:00 means until midnight."""

    model_config = ConfigDict(frozen=True)

    opens: time
    closes: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.closes != MIDNIGHT and self.closes <= self.opens:
            raise ValueError("a span closes after it opens")
        return self


OFFICE_DAY = Span(opens=time(8), closes=time(16))
ALL_DAY = Span(opens=MIDNIGHT, closes=MIDNIGHT)


class WorkingHours(BaseModel):
    model_config = ConfigDict(frozen=True)

    timezone: str = "Europe/Helsinki"
    # Monday first; None: closed that weekday.
    week: tuple[Span | None, ...] = Field(
        default=(OFFICE_DAY,) * 5 + (None, None), min_length=7, max_length=7
    )
    # Local dates the service is closed on (public holidays).
    closed_dates: tuple[date, ...] = ()

    @classmethod
    def always(cls) -> WorkingHours:
        return cls(week=(ALL_DAY,) * 7)

    @model_validator(mode="after")
    def _known_zone(self) -> Self:
        try:
            _zone(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(hours: WorkingHours, at: datetime) -> datetime:
    """``at`` (aware) in the queue's zone."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no place in time")
    return at.astimezone(_zone(hours.timezone))


def _span_on(hours: WorkingHours, day: date) -> tuple[datetime, datetime] | None:
    span = hours.week[day.weekday()]
    if span is None or day in hours.closed_dates:
        return None
    zone = _zone(hours.timezone)
    start = datetime.combine(day, span.opens, tzinfo=zone)
    end_day = day + timedelta(days=1) if span.closes == MIDNIGHT else day
    # In UTC, so that arithmetic counts real time also over a daylight-saving change.
    return start.astimezone(UTC), datetime.combine(end_day, span.closes, tzinfo=zone).astimezone(
        UTC
    )


def _spans_from(hours: WorkingHours, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The open spans that end after ``at``, in order, within the horizon (``at`` clipped)."""
    at = at.astimezone(UTC)
    first = local(hours, at).date() - timedelta(days=1)  # yesterday's may run past midnight
    for n in range(HORIZON_DAYS + 1):
        span = _span_on(hours, first + timedelta(days=n))
        if span is not None and span[1] > at:
            yield max(span[0], at), span[1]


def is_open(hours: WorkingHours, at: datetime) -> bool:
    start = next_opening(hours, at)
    # In UTC: equal local times compare by wall clock, which a daylight-saving gap breaks.
    return start is not None and start.astimezone(UTC) == at.astimezone(UTC)


def next_opening(hours: WorkingHours, at: datetime) -> datetime | None:
    """When the queue is open next, in its local time: ``at`` itself while it is open;
    None when it does not open within the horizon."""
    for start, _ in _spans_from(hours, at):
        return local(hours, start)
    return None


def add_open_time(hours: WorkingHours, start: datetime, duration: timedelta) -> datetime:
    """The moment ``duration`` of open time has passed since ``start`` (local time):
    a target of 4 working hours set on Friday at 15.00 falls due on Monday at 11.00."""
    left = duration
    for span_start, span_end in _spans_from(hours, start):
        if span_start + left <= span_end:
            return local(hours, span_start + left)
        left -= span_end - span_start
    # Never open: the plain clock is the best there is.
    return local(hours, start + duration)


def availability(hours: WorkingHours, target: timedelta, now: datetime) -> Availability | None:
    """What the resident is told about when a person answers (None: nothing to promise)."""
    opens = next_opening(hours, now)
    if opens is None:
        return None
    here = local(hours, now)
    if opens.astimezone(UTC) == now.astimezone(UTC):  # open now (as in is_open)
        return Availability(open_now=True, at=add_open_time(hours, now, target), now=here)
    return Availability(open_now=False, at=opens, now=here)
