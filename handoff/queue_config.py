"""The municipality's own queues, from a TOML file (``NEUVONTA_QUEUES_FILE``).

Pure: text in, queues out, or one error that names every problem with its place in the
file. Example (``deploy/queues.example.toml`` holds the default set in this form)::

    [[queue]]
    name = "housing"
    label = { fi = "Asuminen", sv = "Boende", en = "Housing" }
    departments = ["P1"]              # PTV service classes (or your own) routed here
    first_response_minutes = 240      # counted in open time; later is overdue
    hours = { mon = "8-16", tue = "8-16", wed = "8-16", thu = "8-16", fri = "8-15" }
    closed_dates = [2026-12-24, 2026-12-25]   # days not named in hours are closed

Hours are ``"8-16"``, ``"08:30-16:15"``, ``"24h"`` or ``"closed"``; without ``hours`` a queue
keeps office hours (Mon–Fri 8–16); ``timezone`` defaults to Europe/Helsinki. The queue
``general`` must exist: messages with no department go there.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from typing import Any

from pydantic import ValidationError

from handoff.hours import ALL_DAY, Span, WorkingHours
from handoff.queues import Queue
from router.policy import DEFAULT_QUEUE

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LANGUAGES = ("fi", "sv", "en")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_SPAN = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?$")
_QUEUE_KEYS = frozenset(
    ("name", "label", "departments", "first_response_minutes", "hours", "timezone", "closed_dates")
)


class QueueConfigError(ValueError):
    """Every problem of a queues file, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_queues(text: str) -> tuple[Queue, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise QueueConfigError([f"not valid TOML: {e}"]) from None
    entries = data.get("queue")
    if not isinstance(entries, list) or not entries:
        raise QueueConfigError(["no queues: add [[queue]] tables"])
    problems: list[str] = []
    queues: list[Queue] = []
    for n, entry in enumerate(entries, 1):
        where = f"queue {n}"
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            where = f"queue {n} ({entry['name']})"
        queue = _queue(entry, where, problems)
        if queue is not None:
            queues.append(queue)
    names = [q.name for q in queues]
    problems += [f"queue {name!r} is defined twice" for name in sorted(_twice(names))]
    if queues and DEFAULT_QUEUE not in names:
        problems.append(f"there is no {DEFAULT_QUEUE!r} queue (messages with no department)")
    routed: dict[str, str] = {}
    for q in queues:
        for d in q.departments:
            if d in routed and routed[d] != q.name:
                problems.append(f"department {d!r} is in both {routed[d]!r} and {q.name!r}")
            routed.setdefault(d, q.name)
    if problems:
        raise QueueConfigError(problems)
    return tuple(queues)


def _twice(names: list[str]) -> set[str]:
    return {n for n in names if names.count(n) > 1}


def _queue(entry: Any, where: str, problems: list[str]) -> Queue | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: not a table")
        return None
    found = len(problems)
    for key in sorted(set(entry) - _QUEUE_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where}: name must be lowercase letters, digits and '-' (max 40)")
    label = entry.get("label")
    if not isinstance(label, Mapping) or not all(isinstance(v, str) for v in label.values()):
        problems.append(f'{where}: label must be a table of texts, e.g. {{ fi = "…" }}')
        label = {}
    elif not any(label.get(lang) for lang in LANGUAGES):
        problems.append(f"{where}: label needs at least one of fi, sv, en")
    hours = _hours(entry, where, problems)
    if len(problems) > found:
        return None
    # A language without its own label shows the first one given.
    first = next(label[lang] for lang in LANGUAGES if label.get(lang))
    labels = {lang: label.get(lang) or first for lang in LANGUAGES}
    labels |= {k: v for k, v in label.items() if v}
    try:
        return Queue(
            name=name,
            label=labels,
            departments=tuple(entry.get("departments", ())),
            hours=hours,
            first_response_minutes=entry.get("first_response_minutes", 240),
        )
    except ValidationError as e:
        problems += [f"{where}: {_field(err['loc'])}{err['msg']}" for err in e.errors()]
        return None


def _field(loc: tuple[int | str, ...]) -> str:
    return f"{'.'.join(map(str, loc))}: " if loc else ""


def _hours(entry: Mapping[str, Any], where: str, problems: list[str]) -> WorkingHours:
    default = WorkingHours()
    raw = entry.get("hours")
    week: tuple[Span | None, ...] = default.week
    if raw is not None:
        if not isinstance(raw, Mapping):
            problems.append(f'{where}: hours must be a table, e.g. {{ mon = "8-16" }}')
            return default
        for key in sorted(set(raw) - set(DAYS)):
            problems.append(f"{where}: hours: unknown day {key!r} (mon … sun)")
        week = tuple(
            _span(raw.get(day, "closed"), f"{where}: hours.{day}", problems) for day in DAYS
        )
    dates = entry.get("closed_dates", [])
    if not isinstance(dates, list) or not all(isinstance(d, date) for d in dates):
        problems.append(f"{where}: closed_dates must be a list of dates, e.g. [2026-12-24]")
        dates = []
    try:
        return WorkingHours(
            timezone=entry.get("timezone", default.timezone),
            week=week,
            closed_dates=tuple(dates),
        )
    except ValidationError as e:
        problems += [f"{where}: {err['msg'].removeprefix('Value error, ')}" for err in e.errors()]
        return default


def _span(value: Any, where: str, problems: list[str]) -> Span | None:
    if value == "closed":
        return None
    if value == "24h":
        return ALL_DAY
    m = _SPAN.match(value) if isinstance(value, str) else None
    if m is None:
        problems.append(f'{where}: {value!r} is not like "8-16", "08:30-16:15", "24h" or "closed"')
        return None
    h1, m1, h2, m2 = (int(g or 0) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        problems.append(f"{where}: {value!r} is not a time of day")
        return None
    try:
        return Span(opens=time(h1, m1), closes=time(0) if h2 == 24 else time(h2, m2))
    except ValidationError:
        problems.append(f"{where}: {value!r} closes before it opens")
        return None


def render_queues(queues: tuple[Queue, ...]) -> str:
    """The queues in this file format (``neuvonta queues show --toml``)."""
    out: list[str] = []
    for q in queues:
        label = ", ".join(f'{k} = "{v}"' for k, v in q.label.items())
        departments = ", ".join(f'"{d}"' for d in q.departments)
        days = ", ".join(
            f'{day} = "{shown(span)}"' for day, span in zip(DAYS, q.hours.week, strict=True)
        )
        out += [
            "[[queue]]",
            f'name = "{q.name}"',
            f"label = {{ {label} }}",
            f"departments = [{departments}]",
            f"first_response_minutes = {q.first_response_minutes}",
            f'timezone = "{q.hours.timezone}"',
            f"hours = {{ {days} }}",
        ]
        if q.hours.closed_dates:
            out.append(f"closed_dates = [{', '.join(d.isoformat() for d in q.hours.closed_dates)}]")
        out.append("")
    return "\n".join(out)


def shown(span: Span | None) -> str:
    """A day's hours as the file writes them."""
    if span is None:
        return "closed"
    if span == ALL_DAY:
        return "24h"
    closes = "24:00" if span.closes == time(0) else f"{span.closes:%H:%M}"
    return f"{span.opens:%H:%M}-{closes}"
