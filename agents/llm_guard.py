"""Pure checks on what the model gave back: the policy is enforced here, not in the prompt.

An answer goes on only when it is well-formed, cites the passages we sent and nothing else,
is in the resident's reply language, claims no humanity, reveals no instructions, repeats no
redacted personal data, and states links, e-mail addresses and phone numbers only as the
sources do. Anything else leaves no answer (``decide()`` hands off). Safety flags the model
raises are kept even when its answer is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from agents.base import Document, ReplyLanguage
from agents.language import detect_language
from agents.llm_prompt import SYSTEM_PROMPT, PromptSource, source_version
from agents.llm_schema import TriageAnswer
from agents.redact import PLACEHOLDER
from router.phrases import source_language_note

MAX_ANSWER_CHARS = 2500
MAX_REASON_CHARS = 300
# The language check needs a sentence; shorter answers are too few words to tell.
LANGUAGE_CHECK_WORDS = 4
# Consecutive words of the system prompt that in an answer mean it is being revealed.
LEAK_WORDS = 7


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """What one completion said: the message content, or a tool call's arguments."""

    content: str | None = None
    tool_arguments: str | None = None
    refusal: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    """The guard's verdict: an answer that may go on (or None, and why) and the flags."""

    answer: str | None
    cited: tuple[str, ...] = ()
    confidence: float = 0.0
    department: str | None = None
    urgent: bool = False
    personal_case: bool = False
    wants_human: bool = False
    reason: str = ""
    # The model gave a well-formed answer object (its answer may still be refused).
    well_formed: bool = False


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+|0)\d(?:[ \-]?\(?\d\)?){5,14}(?!\d)")
_WORD = re.compile(r"\w+")

# Claims to be a person (EU AI Act Art. 50: a resident must know an AI is answering).
_HUMAN_CLAIMS = re.compile(
    r"\b(?:i am|i'm|im) (?:a |an )?(?:real |actual )?(?:human|person|man|woman)\b"
    r"|\b(?:i am|i'm) not (?:a |an )?(?:ai|bot|robot|machine|chatbot|language model)\b"
    r"|\bolen (?:oikea |aito )?(?:ihminen|henkilö)\b"
    r"|\ben ole (?:tekoäly|botti|robotti|kone|chatbot)\w*"
    r"|\bjag är en (?:riktig |verklig )?(?:människa|person)\b"
    r"|\bjag är (?:inte en|ingen) (?:ai|bot|robot|maskin|chattbot)\b",
    re.IGNORECASE,
)


def _get(value: object, *path: str | int) -> object:
    for key in path:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def completion_output(body: object) -> ModelOutput:
    """The first choice of a chat completion's JSON body, however malformed the body is."""
    message = _get(body, "choices", 0, "message")
    return ModelOutput(
        content=_text(_get(message, "content")),
        tool_arguments=_text(_get(message, "tool_calls", 0, "function", "arguments")),
        refusal=_text(_get(message, "refusal")),
        finish_reason=_text(_get(body, "choices", 0, "finish_reason")),
    )


def completion_tokens(body: object) -> tuple[int, int]:
    """Prompt and completion tokens the endpoint reports (0 when it does not)."""

    def count(key: str) -> int:
        value = _get(body, "usage", key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return count("prompt_tokens"), count("completion_tokens")


def read_output(output: ModelOutput) -> TriageAnswer | str:
    """The answer object, or what is wrong with the output."""
    if output.refusal:
        return "the model refused"
    if output.finish_reason == "length":
        return "the model output was cut off at the token limit"
    if output.finish_reason == "content_filter":
        return "the model output was filtered"
    raw = output.content if output.content and output.content.strip() else output.tool_arguments
    if raw is None or not raw.strip():
        return "the model gave no output"
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1)
    try:
        return TriageAnswer.model_validate_json(raw)
    except (ValidationError, ValueError):
        return "the model output is not a valid answer object"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _confidence(value: float) -> float:
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0


def _shingles(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


_PROMPT_SHINGLES = _shingles(SYSTEM_PROMPT, LEAK_WORDS)


def reveals_prompt(answer: str) -> bool:
    return not _PROMPT_SHINGLES.isdisjoint(_shingles(answer, LEAK_WORDS))


def claims_to_be_human(answer: str) -> bool:
    return _HUMAN_CLAIMS.search(answer) is not None


def _phone_digits(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return "0" + digits[3:] if number.startswith("+358") else digits


def ungrounded_contacts(answer: str, sources_text: str) -> list[str]:
    """Links, e-mail addresses and phone numbers in ``answer`` that the sources do not give."""
    lowered = sources_text.lower()
    missing = [
        u
        for u in (m.rstrip(".,;:!?") for m in _URL.findall(answer))
        if u.lower().split("://", 1)[-1].removeprefix("www.") not in lowered
    ]
    missing += [e for e in _EMAIL.findall(answer) if e.rstrip(".").lower() not in lowered]
    known = {_phone_digits(p) for p in _PHONE.findall(sources_text)}
    missing += [p for p in _PHONE.findall(answer) if _phone_digits(p) not in known]
    return missing


def in_other_language(answer: str, reply_language: ReplyLanguage) -> str | None:
    """The language the answer is written in when it is clearly not the reply language."""
    if len(_WORD.findall(answer)) < LANGUAGE_CHECK_WORDS:
        return None
    guess = detect_language(answer)
    if guess.language in ("und", reply_language):
        return None
    return guess.language


def source_note(reply_language: ReplyLanguage, cited: Sequence[Document]) -> str:
    """The sentence saying the information exists only in another language, when no cited
    source has a version in the reply language; else ""."""
    if not cited or any(d.text.get(reply_language, "").strip() for d in cited):
        return ""
    common = [
        lang for lang in ("fi", "sv", "en") if all(d.text.get(lang, "").strip() for d in cited)
    ]
    lang = common[0] if common else source_version(cited[0], reply_language)
    return source_language_note(reply_language, lang)


def with_source_note(answer: str, reply_language: ReplyLanguage, cited: Sequence[Document]) -> str:
    """The answer with that sentence at the end. The model is asked not to say it itself, so
    the resident reads it once, in the service's own words."""
    note = source_note(reply_language, cited)
    if not note or note.lower() in answer.lower():
        return answer
    return f"{answer.rstrip()} {note}"


def check(
    output: ModelOutput,
    *,
    sent: Sequence[PromptSource],
    docs: Mapping[str, Document],
    reply_language: ReplyLanguage,
) -> Checked:
    """The verdict on one model output. Never raises, whatever the model wrote."""
    parsed = read_output(output)
    if isinstance(parsed, str):
        return Checked(answer=None, reason=f"no answer: {parsed}")
    model_reason = _clip(parsed.reason, MAX_REASON_CHARS)

    def refused(why: str) -> Checked:
        reason = f"model answer refused: {why}"
        return Checked(
            answer=None,
            reason=f"{reason} (model: {model_reason})" if model_reason else reason,
            well_formed=True,
            urgent=parsed.urgent,
            personal_case=parsed.personal_case,
            wants_human=parsed.wants_human,
        )

    sent_ids = {s.doc_id for s in sent}
    cited = tuple(dict.fromkeys(c.strip() for c in parsed.cited_ids if c.strip()))
    answer = parsed.answer.strip()
    if not parsed.answer_found or not answer:
        return refused("the sources do not hold the answer")
    if unknown := [c for c in cited if c not in sent_ids]:
        return refused(f"cites documents that were not given: {', '.join(unknown)[:200]}")
    if not cited:
        return refused("cites no source")
    if len(answer) > MAX_ANSWER_CHARS:
        return refused("the answer is too long")
    if claims_to_be_human(answer):
        return refused("the answer claims to be a person")
    if reveals_prompt(answer):
        return refused("the answer repeats the instructions")
    if other := in_other_language(answer, reply_language):
        return refused(f"the answer is in {other}, not {reply_language}")
    if PLACEHOLDER.search(answer):
        return refused("the answer repeats redacted personal data")
    cited_docs = [docs[c] for c in cited if c in docs]
    sources_text = "\n".join(
        [s.text for s in sent] + [d.url for d in cited_docs if d.url is not None]
    )
    if invented := ungrounded_contacts(answer, sources_text):
        return refused(f"gives contact details the sources do not: {', '.join(invented)[:200]}")
    departments = [dep for d in cited_docs for dep in d.departments]
    department = parsed.department if parsed.department in departments else None
    return Checked(
        answer=with_source_note(answer, reply_language, cited_docs),
        cited=cited,
        confidence=_confidence(parsed.confidence),
        department=department or (departments[0] if departments else None),
        reason=f"model answer citing {', '.join(cited)}: {model_reason}",
        well_formed=True,
        urgent=parsed.urgent,
        personal_case=parsed.personal_case,
        wants_human=parsed.wants_human,
    )
