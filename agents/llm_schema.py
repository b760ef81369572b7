"""What the model must give back: one JSON object, as a strict JSON schema or a tool's arguments.

Every field is required (strict structured output wants that); the guard
(``agents.llm_guard``) checks the values, so the schema only says what each one means.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The tool's name when the endpoint has no ``response_format`` and we use tool calling.
TOOL_NAME = "give_triage_answer"


class TriageAnswer(BaseModel):
    """The answer to the resident's message from the given sources only, or that they do not
    hold it, with what a person must know about the message."""

    model_config = ConfigDict(extra="forbid")

    answer_found: bool = Field(
        description="True only when the sources clearly hold the answer to the message"
    )
    answer: str = Field(
        description="The answer in reply_language, from the sources only; empty when "
        "answer_found is false"
    )
    cited_ids: list[str] = Field(
        description="The id of every source the answer is based on (ids from the sources only)"
    )
    language: str = Field(description="ISO 639-1 code of the language the resident wrote in")
    department: str | None = Field(
        description="The department code of the source the answer is based on, or null"
    )
    urgent: bool = Field(description="Someone's life, health or safety is in danger now")
    personal_case: bool = Field(
        description="The message is about the resident's own case, application, bill, "
        "decision or payment"
    )
    wants_human: bool = Field(description="The resident asks to deal with a person")
    confidence: float = Field(
        description="From 0 to 1: how sure you are that the answer is correct and complete "
        "according to the sources"
    )
    reason: str = Field(description="One short sentence: why this answer, or why none")
