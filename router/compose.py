"""Pure composition of what the resident is told after a decision."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from agents.base import SUPPORTED_LANGUAGES, Assessment
from router import phrases
from router.decide import Action, Decision
from router.events import Role, SourceRef

# Crockford's base32 without the letters people mix up (I, L, O, U).
_CASE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_case_number(prefix: str = "NV") -> str:
    """A case number a resident can read out on the phone: ``NV-7K4Q-X2M9``."""
    chars = "".join(secrets.choice(_CASE_ALPHABET) for _ in range(8))
    return f"{prefix}-{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    role: Role
    text: str
    sources: tuple[SourceRef, ...] = ()


def reply_language(assessment: Assessment | None, conversation_language: str | None) -> str:
    if assessment is not None:
        return assessment.reply_language
    return phrases.supported(conversation_language)


def compose(
    decision: Decision,
    assessment: Assessment | None,
    *,
    language: str,
    disclosed: bool,
    case_number: str | None = None,
    availability: phrases.Availability | None = None,
) -> Outgoing | None:
    """The message to send for a decision, or None when nothing is said (HOLD).

    A held message that reads as urgent still gets the emergency guidance at once; a
    handoff says when a person answers (``availability`` of the queue, when known).
    """
    match decision.action:
        case Action.HOLD:
            if decision.urgent:
                return Outgoing(Role.SYSTEM, phrases.held_urgent(language))
            return None
        case Action.HANDOFF:
            if case_number is None:
                raise ValueError("a handoff needs a case number")
            return Outgoing(
                Role.SYSTEM,
                phrases.handoff_ack(
                    language, case_number, urgent=decision.urgent, availability=availability
                ),
            )
        case Action.CLARIFY:
            assert decision.clarify is not None
            parts = [phrases.clarify(language, decision.clarify)]
            return Outgoing(Role.AI, _with_disclosure(parts, language, disclosed))
        case Action.ANSWER:
            assert assessment is not None and assessment.answer is not None
            parts = []
            if assessment.language not in SUPPORTED_LANGUAGES and assessment.language != "und":
                parts.append(phrases.unsupported_language_note(language))
            parts.append(assessment.answer)
            if assessment.answer_language and assessment.answer_language != language:
                note = phrases.source_language_note(language, assessment.answer_language)
                if note:
                    parts.append(note)
            return Outgoing(
                Role.AI, _with_disclosure(parts, language, disclosed), assessment.sources
            )


def _with_disclosure(parts: list[str], language: str, disclosed: bool) -> str:
    # EU AI Act Art. 50: the first AI message of a conversation says an AI is answering.
    if not disclosed:
        parts = [phrases.disclosure(language), *parts]
    return "\n\n".join(parts)
