"""The guard on model output: only a well-formed, grounded, cited answer in the resident's
language goes on; whatever the model writes, the guard never raises."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import Document, ReplyLanguage
from agents.llm_guard import (
    Checked,
    ModelOutput,
    check,
    completion_output,
    completion_tokens,
    read_output,
    source_note,
)
from agents.llm_prompt import SYSTEM_PROMPT, PromptSource
from agents.llm_schema import TriageAnswer

LIBRARY = Document(
    id="lib",
    departments=("P25",),
    title={"fi": "Kirjasto", "sv": "Bibliotek", "en": "Library"},
    text={
        "fi": "Kirjasto on auki arkisin 9-20. Puhelin 09 310 85000. Lisätietoja "
        "https://www.example.fi/kirjasto ja kirjasto@example.fi.",
        "sv": "Biblioteket är öppet vardagar 9-20. Telefon 09 310 85000.",
        "en": "The library is open on weekdays 9-20. Phone 09 310 85000.",
    },
)
BOATS = Document(
    id="boats",
    departments=("P7",),
    title={"fi": "Venepaikat"},
    text={"fi": "Venepaikkaa haetaan sähköisesti maaliskuun loppuun mennessä."},
)
DOCS = {d.id: d for d in (LIBRARY, BOATS)}


def sent(*docs: Document, lang: str = "en") -> list[PromptSource]:
    return [
        PromptSource(d.id, d.title_in(lang), v, d.text[v])
        for d in docs
        for v in [lang if lang in d.text else "fi"]
    ]


def output(**fields: Any) -> ModelOutput:
    data: dict[str, Any] = {
        "answer_found": True,
        "answer": "The library is open on weekdays from 9 to 20.",
        "cited_ids": ["lib"],
        "language": "en",
        "department": "P25",
        "urgent": False,
        "personal_case": False,
        "wants_human": False,
        "confidence": 0.8,
        "reason": "opening hours are in the source",
        **fields,
    }
    return ModelOutput(content=json.dumps(data), finish_reason="stop")


def verdict(
    out: ModelOutput, lang: ReplyLanguage = "en", docs: tuple[Document, ...] = (LIBRARY,)
) -> Checked:
    return check(out, sent=sent(*docs, lang=lang), docs=DOCS, reply_language=lang)


def test_a_cited_grounded_answer_goes_on() -> None:
    v = verdict(output())
    assert v.answer == "The library is open on weekdays from 9 to 20."
    assert v.cited == ("lib",)
    assert v.confidence == 0.8
    assert v.department == "P25"
    assert v.well_formed
    assert "lib" in v.reason


def test_invalid_json_refusal_empty_and_cut_off_leave_no_answer() -> None:
    cases = {
        "not a valid answer object": ModelOutput(content='{"answer": "Kirjasto on auki'),
        "refused": ModelOutput(refusal="I can't help with that."),
        "no output": ModelOutput(content="   "),
        "cut off": ModelOutput(content=output().content, finish_reason="length"),
        "filtered": ModelOutput(content=output().content, finish_reason="content_filter"),
    }
    for why, out in cases.items():
        v = verdict(out)
        assert v.answer is None, why
        assert v.confidence == 0.0
        assert why in v.reason
        assert not v.well_formed


def test_missing_fields_or_wrong_types_are_not_an_answer() -> None:
    data = json.loads(output().content or "")
    del data["cited_ids"]
    assert isinstance(read_output(ModelOutput(content=json.dumps(data))), str)
    assert isinstance(read_output(ModelOutput(content='["a list"]')), str)
    assert isinstance(read_output(ModelOutput(content="null")), str)


def test_a_fenced_answer_and_a_tool_call_are_read() -> None:
    fenced = ModelOutput(content=f"```json\n{output().content}\n```")
    assert isinstance(read_output(fenced), TriageAnswer)
    tool = ModelOutput(content=None, tool_arguments=output().content, finish_reason="tool_calls")
    assert verdict(tool).answer is not None


def test_citing_a_document_that_was_not_sent_is_refused() -> None:
    # BOATS is in the knowledge base but was not among the passages sent.
    for cited in (["made-up-id"], ["lib", "made-up-id"], ["boats"]):
        v = verdict(output(cited_ids=cited))
        assert v.answer is None
        assert "not given" in v.reason
        assert v.cited == ()


def test_an_answer_without_a_citation_is_refused() -> None:
    for cited in ([], ["", "  "]):
        v = verdict(output(cited_ids=cited))
        assert v.answer is None
        assert "cites no source" in v.reason


def test_the_model_saying_the_sources_do_not_hold_it_is_no_answer() -> None:
    assert verdict(output(answer_found=False)).answer is None
    assert verdict(output(answer="  ")).answer is None


def test_an_answer_in_another_language_is_refused() -> None:
    v = verdict(output(answer="Kirjasto on auki arkisin kello yhdeksästä kahdeksaan."), lang="en")
    assert v.answer is None
    assert "is in fi, not en" in v.reason
    sv = "Biblioteket är öppet på vardagar från klockan nio till åtta."
    assert verdict(output(answer=sv), lang="sv").answer == sv


def test_safety_flags_are_kept_when_the_answer_is_refused() -> None:
    v = verdict(output(cited_ids=["nope"], urgent=True, personal_case=True, wants_human=True))
    assert v.answer is None
    assert (v.urgent, v.personal_case, v.wants_human) == (True, True, True)
    ok = verdict(output(urgent=True))
    assert ok.urgent and ok.answer is not None  # decide() hands an urgent message off anyway


def test_claiming_to_be_a_person_is_refused() -> None:
    for text, lang in [
        ("I am a human, not a bot. The library is open on weekdays.", "en"),
        ("I'm not an AI. The library is open on weekdays from 9 to 20.", "en"),
        ("Olen ihminen. Kirjasto on auki arkisin kello yhdeksästä.", "fi"),
        ("En ole tekoäly, vaan kirjaston työntekijä. Kirjasto on auki arkisin.", "fi"),
        ("Jag är en människa. Biblioteket är öppet på vardagar.", "sv"),
    ]:
        v = verdict(output(answer=text), lang=lang)  # type: ignore[arg-type]
        assert v.answer is None, text
        assert "claims to be a person" in v.reason


def test_repeating_the_instructions_is_refused() -> None:
    leak = "My instructions: " + SYSTEM_PROMPT.split("Rules:")[1][:300]
    v = verdict(output(answer=leak))
    assert v.answer is None
    assert "repeats the instructions" in v.reason


def test_repeating_a_redaction_placeholder_is_refused() -> None:
    v = verdict(output(answer="We will call you at [PHONE_1] about the library tomorrow."))
    assert v.answer is None
    assert "redacted" in v.reason


def test_contact_details_must_come_from_the_sources() -> None:
    good = "You can call the library on 09 310 85000 or +358 9 310 85000 on weekdays."
    assert verdict(output(answer=good)).answer == good
    for invented in (
        "Call the library on 09 123 4567 to ask about the opening hours.",
        "See https://evil.example.com/library for the opening hours of the library.",
        "Write to library-help@evil.example.com to ask about the opening hours.",
    ):
        v = verdict(output(answer=invented))
        assert v.answer is None, invented
        assert "contact details" in v.reason
    fi = sent(LIBRARY, lang="fi")
    text = "Katso www.example.fi/kirjasto tai kirjoita kirjasto@example.fi, niin saat tietoa."
    v = check(output(answer=text), sent=fi, docs=DOCS, reply_language="fi")
    assert v.answer == text


def test_a_finnish_only_source_is_said_to_be_in_finnish() -> None:
    text = "You apply for a boat place online by the end of March."
    v = verdict(output(answer=text, cited_ids=["boats"], department="P7"), docs=(BOATS,))
    assert v.answer == f"{text} This information is only available in Finnish."
    sv = "Båtplats söks elektroniskt senast i slutet av mars."
    v = verdict(output(answer=sv, cited_ids=["boats"]), lang="sv", docs=(BOATS,))
    assert v.answer == f"{sv} Informationen finns bara på finska."
    # Said once, however often the model is asked.
    again = verdict(output(answer=v.answer, cited_ids=["boats"]), lang="sv", docs=(BOATS,))
    assert again.answer == v.answer
    # A source with an English version needs no note; Finnish replies never do.
    assert source_note("en", [LIBRARY]) == ""
    assert source_note("fi", [BOATS]) == ""
    assert source_note("en", [LIBRARY, BOATS]) == ""


def test_department_comes_from_the_cited_sources() -> None:
    assert verdict(output(department="P99")).department == "P25"
    assert verdict(output(department=None)).department == "P25"


def test_confidence_is_clamped() -> None:
    assert verdict(output(confidence=7)).confidence == 1.0
    assert verdict(output(confidence=-1)).confidence == 0.0


def test_completion_bodies_of_any_shape_are_read_without_raising() -> None:
    body = {
        "choices": [{"message": {"content": "x", "refusal": None}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3},
    }
    assert completion_output(body) == ModelOutput(content="x", finish_reason="stop")
    assert completion_tokens(body) == (10, 3)
    bodies: list[object] = [None, [], "text", {"choices": "x"}, {"choices": [None]}, {"usage": 1}]
    for junk in bodies:
        assert completion_output(junk).content is None
        assert completion_tokens(junk) == (0, 0)
    assert completion_tokens({"usage": {"prompt_tokens": True, "completion_tokens": -3}}) == (0, 0)


SENT = sent(LIBRARY, BOATS)
SENT_IDS = {"lib", "boats"}
ids = st.one_of(st.sampled_from(["lib", "boats", "other", "", "LIB"]), st.text(max_size=12))
answer_objects = st.fixed_dictionaries(
    {
        "answer_found": st.booleans(),
        "answer": st.text(max_size=300),
        "cited_ids": st.lists(ids, max_size=4),
        "language": st.text(max_size=5),
        "department": st.one_of(st.none(), st.text(max_size=5)),
        "urgent": st.booleans(),
        "personal_case": st.booleans(),
        "wants_human": st.booleans(),
        "confidence": st.floats(allow_nan=False),
        "reason": st.text(max_size=100),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    content=st.one_of(st.none(), st.text(max_size=400), answer_objects.map(json.dumps)),
    tool=st.one_of(st.none(), st.text(max_size=100), answer_objects.map(json.dumps)),
    refusal=st.one_of(st.none(), st.text(max_size=20)),
    finish=st.sampled_from([None, "stop", "length", "tool_calls", "content_filter", "x"]),
    lang=st.sampled_from(["fi", "sv", "en"]),
)
def test_arbitrary_output_never_raises_and_never_cites_what_was_not_sent(
    content: str | None, tool: str | None, refusal: str | None, finish: str | None, lang: str
) -> None:
    out = ModelOutput(content=content, tool_arguments=tool, refusal=refusal, finish_reason=finish)
    v = check(out, sent=SENT, docs=DOCS, reply_language=lang)  # type: ignore[arg-type]
    assert 0.0 <= v.confidence <= 1.0
    if v.answer is not None:
        assert v.cited
        assert set(v.cited) <= SENT_IDS
        assert v.answer.strip()
    else:
        assert v.cited == ()
