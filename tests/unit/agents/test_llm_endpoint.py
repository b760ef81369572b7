"""How the LLM agent reads endpoint errors: what is retried, what opens the circuit, what a
400 teaches it, and how an endpoint is named in logs."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)

from agents.llm import (
    DeadlineExceeded,
    EndpointQuirks,
    counts_against_endpoint,
    endpoint_name,
    failure_kind,
    is_retryable,
    llm_agent_from_settings,
)
from router.settings import Settings

REQUEST = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def status_error(cls: type[APIStatusError], status: int, message: str = "x") -> Any:
    response = httpx2.Response(status, request=REQUEST, json={"error": {"message": message}})
    return cls(message, response=response, body={"message": message})


def test_what_is_retried() -> None:
    assert is_retryable(status_error(RateLimitError, 429))
    assert is_retryable(status_error(InternalServerError, 503))
    assert is_retryable(status_error(APIStatusError, 408))
    assert is_retryable(APIConnectionError(request=REQUEST))
    assert is_retryable(APITimeoutError(request=REQUEST))
    assert is_retryable(TimeoutError())
    assert not is_retryable(DeadlineExceeded())
    assert not is_retryable(status_error(BadRequestError, 400))
    assert not is_retryable(status_error(AuthenticationError, 401))
    assert not is_retryable(ValueError())


def test_failure_kinds_for_the_audit() -> None:
    assert failure_kind(APITimeoutError(request=REQUEST)) == "timeout"
    assert failure_kind(DeadlineExceeded()) == "timeout"
    assert failure_kind(APIConnectionError(request=REQUEST)) == "connection"
    assert failure_kind(status_error(RateLimitError, 429)) == "rate_limited"
    assert failure_kind(status_error(AuthenticationError, 401)) == "unauthorized"
    assert failure_kind(status_error(InternalServerError, 502)) == "status 502"
    assert failure_kind(KeyError("x")) == "KeyError"


def test_only_endpoint_trouble_counts_for_the_circuit() -> None:
    assert counts_against_endpoint(status_error(InternalServerError, 500))
    assert counts_against_endpoint(status_error(AuthenticationError, 401))
    assert counts_against_endpoint(APITimeoutError(request=REQUEST))
    assert not counts_against_endpoint(status_error(BadRequestError, 400))
    assert not counts_against_endpoint(status_error(APIStatusError, 413))


@pytest.mark.parametrize(
    ("message", "quirk"),
    [
        ("response_format of type 'json_schema' is not supported", "tools"),
        ("Invalid parameter: 'response_format' must be one of text, json_object", "tools"),
        (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_completion_tokens",
        ),
        ("Unsupported value: 'temperature' does not support 0 with this model.", "no_temperature"),
    ],
)
def test_a_400_naming_a_parameter_teaches_the_agent_once(message: str, quirk: str) -> None:
    quirks = EndpointQuirks()
    error = status_error(BadRequestError, 400, message)
    learned = quirks.learn(error)
    assert learned is not None and learned[1] is True
    assert getattr(quirks, quirk) is True
    # A concurrent call that hit the same 400 retries too, but it is not news.
    again = quirks.learn(error)
    assert again is not None and again[1] is False


def test_a_400_about_the_message_teaches_nothing() -> None:
    quirks = EndpointQuirks()
    error = status_error(BadRequestError, 400, "This model's maximum context length is 8192")
    assert quirks.learn(error) is None
    assert quirks == EndpointQuirks()


def test_endpoint_names_carry_no_credentials() -> None:
    assert endpoint_name("https://user:secret@llm.example.fi:8443/v1") == "llm.example.fi:8443"
    assert endpoint_name("http://127.0.0.1:11434/v1") == "127.0.0.1:11434"
    assert endpoint_name("not a url") == "?"
    assert endpoint_name("http://[::1") == "?"


def test_no_agent_without_an_endpoint_and_a_model() -> None:
    class Never:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("the offline agent is not touched")

    for settings in (
        Settings(llm_base_url=None, llm_model="m"),
        Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model=None),
    ):
        assert llm_agent_from_settings(settings, Never()) is None  # type: ignore[arg-type]
