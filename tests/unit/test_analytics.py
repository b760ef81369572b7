"""Service figures and the knowledge-gap list: counting, resolution, response times,
grouping similar questions and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.analytics import (
    MessageFact,
    TicketFact,
    first_response,
    handoff_reasons,
    label_figures,
    resolution,
    volume,
)
from handoff.gaps import CSV_HEADER, GapQuestion, gap_questions, group, to_csv

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def fact(conversation: str, minute: int, action: str, **kw: Any) -> MessageFact:
    fields: dict[str, Any] = {
        "conversation_id": conversation,
        "created_at": T0 + timedelta(minutes=minute),
        "channel": "web",
        "language": "fi",
        "queue": "general",
        "action": action,
    }
    return MessageFact(**(fields | kw))


def test_volume_counts_by_channel_language_and_queue_largest_first() -> None:
    facts = [
        fact("a", 0, "answer", channel="sms"),
        fact("b", 0, "answer", language="sv", queue="health"),
        fact("c", 0, "handoff", language=None, queue="health"),
    ]
    v = volume(facts)
    assert v.messages == 3
    assert list(v.by_channel.items()) == [("web", 2), ("sms", 1)]
    assert v.by_language == {"fi": 1, "sv": 1, "und": 1}
    assert list(v.by_queue.items()) == [("health", 2), ("general", 1)]


def test_an_answer_followed_by_a_handoff_is_not_resolved_by_the_ai() -> None:
    facts = [
        fact("a", 0, "answer"),
        fact("a", 5, "handoff", reason="asked_for_human"),
        fact("a", 6, "hold"),  # a person owns it now: not triaged
        fact("b", 0, "handoff", reason="low_confidence"),
        fact("b", 9, "answer"),  # after that ticket: its own question, resolved
        fact("c", 0, "answer"),
        fact("d", 0, "clarify", clarify="greeting"),
    ]
    r = resolution(facts)
    assert (r.messages, r.answered, r.resolved, r.rate) == (6, 3, 2, 0.3333)
    assert resolution([]).rate is None
    assert handoff_reasons(facts) == {"asked_for_human": 1, "low_confidence": 1}


def test_first_response_median_and_p90_per_queue_in_minutes() -> None:
    def ticket(queue: str, wait: float | None) -> TicketFact:
        return TicketFact(
            queue=queue,
            created_at=T0,
            first_response_at=None if wait is None else T0 + timedelta(minutes=wait),
        )

    tickets = [ticket("health", w) for w in (1, 2, 3, 4, 5, 6, 7, 8, 9, 100)]
    tickets.append(ticket("housing", None))
    fr = first_response(tickets, ["general", "health", "housing"])
    assert (fr.overall.tickets, fr.overall.answered) == (11, 10)
    assert (fr.overall.median_minutes, fr.overall.p90_minutes) == (5.0, 9.0)
    assert list(fr.by_queue) == ["general", "health", "housing"]
    assert fr.by_queue["general"].tickets == 0 and fr.by_queue["general"].median_minutes is None
    assert (fr.by_queue["housing"].tickets, fr.by_queue["housing"].answered) == (1, 0)


def test_gaps_are_low_confidence_and_no_answer_handoffs_and_more_detail_questions() -> None:
    facts = [
        fact("a", 0, "handoff", reason="low_confidence", text="Koiran rekisteröinti?"),
        fact("b", 1, "handoff", reason="no_answer", text="Missä on koirapuisto?"),
        fact("c", 2, "clarify", clarify="more_detail", text="koira"),
        fact("d", 3, "handoff", reason="urgent", text="Apua, tulipalo!"),
        fact("e", 4, "answer", text="Kirjaston aukioloajat?"),
        fact("f", 5, "clarify", clarify="greeting", text="Hei"),
    ]
    found = gap_questions(facts)
    assert [q.text for q in found] == ["koira", "Missä on koirapuisto?", "Koiran rekisteröinti?"]
    assert [q.reason for q in found] == ["more_detail", "no_answer", "low_confidence"]


def q(text: str, lang: str = "fi", minute: int = 0, confidence: float = 0.2) -> GapQuestion:
    return GapQuestion(
        text=text,
        language=lang,
        confidence=confidence,
        reason="low_confidence",
        asked_at=T0 + timedelta(minutes=minute),
    )


def test_similar_wordings_group_together_and_languages_stay_apart() -> None:
    questions = [
        q("Miten haen pysäköintilupaa?", minute=1),
        q("Miten haen pysäköintiluvan?", minute=2),
        q("Pysäköintilupa, miten haen?", minute=3, confidence=0.4),
        q("Milloin uimahalli on auki?", minute=4),
        q("Hur ansöker jag om parkeringstillstånd?", lang="sv", minute=5),
        q("Hur ansöker man om parkeringstillstånd?", lang="sv", minute=6),
    ]
    groups = group(questions)
    assert [(g.language, g.count) for g in groups] == [("fi", 3), ("sv", 2), ("fi", 1)]
    parking = groups[0]
    assert parking.last_asked == T0 + timedelta(minutes=3)
    assert parking.mean_confidence == 0.267
    assert set(parking.examples) == {
        "Miten haen pysäköintilupaa?",
        "Miten haen pysäköintiluvan?",
        "Pysäköintilupa, miten haen?",
    }
    assert parking.example in parking.examples
    assert groups[2].example == "Milloin uimahalli on auki?"
    assert group([]) == []
    assert [g.count for g in group([q("Yksi kysymys")])] == [1]


def test_the_csv_has_a_header_quotes_properly_and_defuses_formulas() -> None:
    tricky = 'Mitä "kotitalousvähennys", tarkoittaa;\nja miten?'
    groups = group([q(tricky, minute=1), q('=HYPERLINK("http://x")', minute=2)])
    text = to_csv(groups)
    read = list(csv.reader(io.StringIO(text)))
    assert tuple(read[0]) == CSV_HEADER
    assert len(read) == 3
    by_question = {row[4]: row for row in read[1:]}
    assert tricky in by_question
    assert by_question[tricky][1:3] == ["fi", "1"]
    assert by_question[tricky][5] == "0.200"
    # A cell that a spreadsheet would run as a formula starts with a quote instead.
    assert '\'=HYPERLINK("http://x")' in by_question
    assert to_csv([]).splitlines() == [",".join(CSV_HEADER)]


def test_label_figures_count_only_what_was_judged() -> None:
    f = label_figures([(True, False), (None, True), (False, None), (True, True)])
    assert (f.labelled, f.department_judged, f.department_right, f.department_rate) == (
        4,
        3,
        2,
        0.6667,
    )
    assert (f.answer_judged, f.answer_right, f.answer_rate) == (3, 2, 0.6667)
    assert label_figures([]).answer_rate is None
