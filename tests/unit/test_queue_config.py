"""The municipality's queues file: parsed into queues, or every problem named with its place."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from handoff.hours import ALL_DAY, Span, is_open
from handoff.queue_config import QueueConfigError, parse_queues, render_queues
from handoff.queues import DEFAULT_QUEUES

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "queues.example.toml"

CUSTOM = """
[[queue]]
name = "general"
label = { fi = "Neuvonta" }
departments = ["P7"]

[[queue]]
name = "tekninen"
label = { fi = "Tekninen toimi", sv = "Tekniska verket" }
departments = ["P2", "P16"]
first_response_minutes = 60
timezone = "Europe/Stockholm"
hours = { mon = "8-16", tue = "08:30-16:15", wed = "24h", sat = "10-14" }
closed_dates = [2026-12-24]
"""


def test_the_example_file_is_the_built_in_set() -> None:
    assert parse_queues(EXAMPLE.read_text(encoding="utf-8")) == DEFAULT_QUEUES
    assert parse_queues(render_queues(DEFAULT_QUEUES)) == DEFAULT_QUEUES


def test_a_municipalitys_own_queues() -> None:
    general, tech = parse_queues(CUSTOM)
    assert general.label == {"fi": "Neuvonta", "sv": "Neuvonta", "en": "Neuvonta"}
    assert general.hours == DEFAULT_QUEUES[0].hours  # office hours unless told otherwise
    assert tech.label["en"] == "Tekninen toimi" and tech.label["sv"] == "Tekniska verket"
    assert tech.departments == ("P2", "P16") and tech.first_response_minutes == 60
    assert tech.hours.timezone == "Europe/Stockholm"
    mon, tue, wed, thu, fri, sat, sun = tech.hours.week
    assert mon == Span(opens=time(8), closes=time(16))
    assert tue == Span(opens=time(8, 30), closes=time(16, 15))
    assert wed == ALL_DAY and sat == Span(opens=time(10), closes=time(14))
    assert thu is fri is sun is None  # days not named are closed
    assert tech.hours.closed_dates == (date(2026, 12, 24),)
    # Wednesday 2026-12-02 03:00 in Stockholm: open all day; Thursday: closed.
    assert is_open(tech.hours, datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    assert not is_open(tech.hours, datetime(2026, 12, 3, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not = [toml", "not valid TOML"),
        ("", "no queues"),
        ('[[queue]]\nname = "housing"\nlabel = { fi = "A" }', "there is no 'general' queue"),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\n'
            '[[queue]]\nname = "general"\nlabel = { fi = "B" }',
            "queue 'general' is defined twice",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\ndepartments = ["P1"]\n'
            '[[queue]]\nname = "x"\nlabel = { fi = "B" }\ndepartments = ["P1"]',
            "department 'P1' is in both 'general' and 'x'",
        ),
        (
            '[[queue]]\nname = "General Queue"\nlabel = { fi = "A" }',
            "queue 1 (General Queue): name",
        ),
        ('[[queue]]\nname = "general"\nlabel = "A"', "queue 1 (general): label must be a table"),
        ('[[queue]]\nname = "general"\nlabel = { de = "A" }', "label needs at least one of"),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\ncolour = "red"',
            "unknown key 'colour'",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { mon = "8-25" }',
            "hours.mon: '8-25' is not a time of day",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { mon = "16-8" }',
            "hours.mon: '16-8' closes before it opens",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { monday = "8-16" }',
            "unknown day 'monday'",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { tue = "nine" }',
            "hours.tue: 'nine' is not like",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\ntimezone = "Mars/Olympus"',
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nfirst_response_minutes = 0',
            "first_response_minutes: Input should be greater than or equal to 1",
        ),
        (
            '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nclosed_dates = ["Christmas"]',
            "closed_dates must be a list of dates",
        ),
    ],
)
def test_every_problem_is_named_with_its_place(text: str, expected: str) -> None:
    with pytest.raises(QueueConfigError) as e:
        parse_queues(text)
    assert any(expected in p for p in e.value.problems), e.value.problems


def test_all_problems_at_once() -> None:
    text = (
        '[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { mon = "x" }\n'
        '[[queue]]\nname = "BAD"\nlabel = { fi = "B" }\n'
    )
    with pytest.raises(QueueConfigError) as e:
        parse_queues(text)
    assert len(e.value.problems) == 2
