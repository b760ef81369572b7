"""The LLM triage agent: the offline agent's reading, then one grounded model call, guarded.

Per message: (1) the offline agent assesses it (language, the urgent / personal-case /
asks-for-a-person rules, retrieval, confidence); its safety flags are a floor the model can
only add to. (2) A question with retrieved passages that no rule already sends to a person
gets ONE call to any OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama) with
the top passages and the resident's redacted text, asking for a structured answer (JSON
schema through ``response_format``, or tool calling where the endpoint lacks it). (3)
``agents.llm_guard`` checks the output; anything off-policy leaves no answer, so
``router.decide`` hands off. (4) The assessment carries the model, prompt version, tokens,
cost and latency for the audit.

The call is retried on 429/5xx/connection errors with jittered backoff within a deadline
under NEUVONTA_AGENT_TIMEOUT; a circuit breaker stops calling a failing endpoint for a while.
Then, and when a call finally fails, the offline agent's assessment stands
(NEUVONTA_LLM_FALLBACK=offline) or people answer (=human).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncAzureOpenAI,
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    omit,
    pydantic_function_tool,
)
from openai.types.chat import ChatCompletionMessageParam

from agents.base import AgentUsage, Assessment, Document, Intent, TriageRequest
from agents.llm_guard import Checked, ModelOutput, check, completion_output, completion_tokens
from agents.llm_prompt import HISTORY_MESSAGES, PROMPT_VERSION, build_messages, pick_sources
from agents.llm_schema import TOOL_NAME, TriageAnswer
from agents.offline import OfflineAgent
from agents.redact import redact
from agents.resilience import (
    BreakerChange,
    CircuitBreaker,
    Retry,
    call_with_retries,
    status_is_retryable,
)
from router.events import SourceRef
from router.settings import Settings

log = logging.getLogger(__name__)

# Structured outputs are GA from this Azure OpenAI API version on.
DEFAULT_AZURE_API_VERSION = "2024-10-21"
# Sent as the key to endpoints that need none (a local vLLM or Ollama): never a key from
# the environment that was meant for another endpoint.
NO_KEY = "no-key"
# Part of NEUVONTA_AGENT_TIMEOUT kept free for the offline assessment before the model call
# and the fallback after it, so the router's own timeout never cuts in.
DEADLINE_SHARE = 0.2
MAX_DEADLINE_MARGIN = 1.0
# 400s one message may learn an endpoint's quirks from before the call counts as failed.
MAX_ADAPTATIONS = 3
# A 4xx that concerns this one message, not the endpoint (the circuit does not count it).
MESSAGE_STATUS = frozenset({400, 413, 422})


class DeadlineExceeded(TimeoutError):
    """No time left under the agent timeout for (another) model call."""


@dataclass
class EndpointQuirks:
    """What this endpoint turned out not to accept, learnt from its 400s, kept per agent."""

    # No response_format / json_schema: ask for the answer as a tool call.
    tools: bool = False
    # Rejects max_tokens (newer OpenAI models): send max_completion_tokens.
    max_completion_tokens: bool = False
    # Rejects temperature (reasoning models): leave it out.
    no_temperature: bool = False

    def learn(self, error: BadRequestError) -> tuple[str, bool] | None:
        """The parameter a 400 names that we can do without, and whether that is news (a
        concurrent call may have learnt it already); None: nothing to adapt to."""
        text = f"{error.message} {error.body}".lower()
        if "response_format" in text or "json_schema" in text:
            new, self.tools = not self.tools, True
            return "response_format (structured output): tool calling instead", new
        if "max_tokens" in text and "max_completion_tokens" in text:
            new, self.max_completion_tokens = not self.max_completion_tokens, True
            return "max_tokens: max_completion_tokens instead", new
        if "temperature" in text:
            new, self.no_temperature = not self.no_temperature, True
            return "temperature: the endpoint's default", new
        return None


def is_retryable(error: Exception) -> bool:
    """429, 5xx, 408/409, connection errors and timeouts: worth another try."""
    if isinstance(error, DeadlineExceeded):
        return False
    if isinstance(error, APIConnectionError | TimeoutError):
        return True
    return isinstance(error, APIStatusError) and status_is_retryable(error.status_code)


def failure_kind(error: BaseException) -> str:
    """A short, key-free name for the audit's ``fallback`` ("error: <kind>")."""
    match error:
        case APITimeoutError() | TimeoutError():
            return "timeout"
        case APIConnectionError():
            return "connection"
        case RateLimitError():
            return "rate_limited"
        case AuthenticationError():
            return "unauthorized"
        case APIStatusError():
            return f"status {error.status_code}"
        case _:
            return type(error).__name__


def counts_against_endpoint(error: BaseException) -> bool:
    """Whether a failure says the endpoint is unwell (a bad request is this message's)."""
    return not (isinstance(error, APIStatusError) and error.status_code in MESSAGE_STATUS)


def make_client(settings: Settings) -> AsyncOpenAI:
    """The OpenAI (or Azure OpenAI) client for the configured endpoint; it never retries on
    its own (the agent does, within its deadline)."""
    if not settings.llm_base_url:
        raise ValueError("NEUVONTA_LLM_BASE_URL is not set")
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else NO_KEY
    if settings.llm_azure_deployment:
        return AsyncAzureOpenAI(
            azure_endpoint=settings.llm_base_url,
            azure_deployment=settings.llm_azure_deployment,
            api_version=settings.llm_azure_api_version or DEFAULT_AZURE_API_VERSION,
            api_key=key,
            max_retries=0,
            timeout=settings.llm_timeout,
        )
    return AsyncOpenAI(
        base_url=settings.llm_base_url, api_key=key, max_retries=0, timeout=settings.llm_timeout
    )


def endpoint_name(url: str) -> str:
    """Host and port of the endpoint, for logs: never a user name or password in the URL."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "?"
    return f"{parts.hostname}{port}" if parts.hostname else "?"


def _updated(base: Assessment, **changes: Any) -> Assessment:
    return Assessment.model_validate({**dict(base), **changes})


class LlmAgent:
    """A ``TriageAgent`` answering through an OpenAI-compatible model, over ``offline``."""

    name = "llm"

    def __init__(
        self,
        settings: Settings,
        offline: OfflineAgent,
        *,
        client: AsyncOpenAI | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_circuit: Callable[[str], None] | None = None,
    ) -> None:
        """``on_circuit`` hears the circuit's state (closed, open, half_open) at start and at
        every change: the router shows it on /metrics."""
        model = settings.llm_model or settings.llm_azure_deployment
        if not model:
            raise ValueError("NEUVONTA_LLM_MODEL is not set")
        self.settings = settings
        self.offline = offline
        self.model = model
        self._client = client or make_client(settings)
        self._clock = clock
        self._sleep = sleep
        self._endpoint = endpoint_name(settings.llm_base_url or "")
        self._on_circuit = on_circuit
        self._breaker = CircuitBreaker.from_settings(
            settings, clock=clock, on_change=self._breaker_changed
        )
        self._quirks = EndpointQuirks()
        if on_circuit is not None:
            on_circuit(self._breaker.state)

    @property
    def breaker_state(self) -> str:
        """The circuit's state: closed, open or half_open."""
        return self._breaker.state

    async def aclose(self) -> None:
        """Close the HTTP client (its connections)."""
        await self._client.close()

    def close(self) -> None:
        """Stop the offline agent's background work (``router.app.close_agent``)."""
        self.offline.close()

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Until the offline agent's index exists (``router.app.settle_agent``)."""
        return self.offline.wait_indexed(timeout)

    # ---- one message ----

    async def triage(self, request: TriageRequest) -> Assessment:
        started = self._clock()
        base = await self.offline.triage(request)
        docs = self._candidates(base)
        if not docs:
            return base
        # Asked first: while the circuit is open no prompt is built for nothing.
        if not self._breaker.allow():
            return self._fallback(base, "circuit_open", None)
        prefix = self.settings.case_prefix
        try:
            sources = pick_sources(
                docs,
                base.reply_language,
                self.offline.relevance(request.text),
                split=self.offline.passages_of,
            )
            messages = build_messages(
                redact(request.text, case_prefix=prefix).text,
                base.reply_language,
                sources,
                [redact(h, case_prefix=prefix).text for h in request.history[-HISTORY_MESSAGES:]],
            )
        except BaseException:
            self._breaker.release()  # no call made: a half-open trial slot is free again
            raise
        deadline = started + self._budget()
        called = self._clock()
        try:
            output, (prompt_tokens, completion_tokens_) = await self._complete(messages, deadline)
        except asyncio.CancelledError:
            self._breaker.release()  # no outcome: let another trial call try
            raise
        except Exception as e:
            latency = (self._clock() - called) * 1000
            if counts_against_endpoint(e):
                self._breaker.failure()
            else:
                self._breaker.success()
            kind = failure_kind(e)
            log.warning(
                "model call to %s failed (%s); the %s fallback answers",
                self._endpoint,
                kind,
                self.settings.llm_fallback,
            )
            return self._fallback(base, f"error: {kind}", latency)
        self._breaker.success()
        latency = (self._clock() - called) * 1000
        usage = AgentUsage(
            model=self.model,
            prompt_version=PROMPT_VERSION,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens_,
            cost=self._cost(prompt_tokens, completion_tokens_),
            latency_ms=round(latency, 1),
        )
        checked = check(
            output, sent=sources, docs=self.offline.docs, reply_language=base.reply_language
        )
        return self._assessment(base, checked, usage)

    def _candidates(self, base: Assessment) -> list[Document]:
        """The documents to send; none when the model has nothing to add (small talk, no
        retrieval, or a rule already sends the message to a person)."""
        if base.intent is not Intent.QUESTION or base.urgent or base.personal_case:
            return []
        if base.wants_human:
            return []
        return [self.offline.docs[d] for d in base.ranked_doc_ids if d in self.offline.docs]

    def _budget(self) -> float:
        timeout = self.settings.agent_timeout
        return timeout - min(timeout * DEADLINE_SHARE, MAX_DEADLINE_MARGIN)

    def _cost(self, prompt_tokens: int, completion_tokens_: int) -> float | None:
        s = self.settings
        if s.llm_price_prompt is None and s.llm_price_completion is None:
            return None
        cost = (
            prompt_tokens * (s.llm_price_prompt or 0.0)
            + completion_tokens_ * (s.llm_price_completion or 0.0)
        ) / 1000
        return round(cost, 8)

    # ---- the call ----

    async def _complete(
        self, messages: list[ChatCompletionMessageParam], deadline: float
    ) -> tuple[ModelOutput, tuple[int, int]]:
        adaptations = 0
        while True:
            try:
                return await call_with_retries(
                    lambda: self._once(messages, deadline),
                    retries=self.settings.llm_retries,
                    is_retryable=is_retryable,
                    deadline=deadline,
                    clock=self._clock,
                    sleep=self._sleep,
                    attempt_timeout=self.settings.llm_timeout,
                    on_retry=self._retrying,
                )
            except BadRequestError as e:
                learned = self._quirks.learn(e) if adaptations < MAX_ADAPTATIONS else None
                if learned is None:
                    raise
                adaptations += 1
                quirk, new = learned
                if new:
                    log.warning("the model endpoint %s does not take %s", self._endpoint, quirk)

    async def _once(
        self, messages: list[ChatCompletionMessageParam], deadline: float
    ) -> tuple[ModelOutput, tuple[int, int]]:
        left = deadline - self._clock()
        if left <= 0:
            raise DeadlineExceeded("no time left for the model call")
        q = self._quirks
        tokens = self.settings.llm_max_tokens
        raw = await self._client.chat.completions.with_raw_response.parse(
            model=self.model,
            messages=messages,
            response_format=omit if q.tools else TriageAnswer,
            tools=[pydantic_function_tool(TriageAnswer, name=TOOL_NAME)] if q.tools else omit,
            tool_choice={"type": "function", "function": {"name": TOOL_NAME}} if q.tools else omit,
            max_tokens=omit if q.max_completion_tokens else tokens,
            max_completion_tokens=tokens if q.max_completion_tokens else omit,
            temperature=omit if q.no_temperature else 0,
            # Per read; call_with_retries bounds the whole try as well.
            timeout=min(self.settings.llm_timeout, left),
        )
        try:
            body: object = raw.http_response.json()
        except ValueError:
            body = None
        return completion_output(body), completion_tokens(body)

    # ---- assessments ----

    def _assessment(self, base: Assessment, checked: Checked, usage: AgentUsage) -> Assessment:
        answer = checked.answer
        sources = tuple(self._source(d, base) for d in checked.cited) if answer else ()
        scores = {**base.scores, "model_confidence": round(checked.confidence, 4)}
        return _updated(
            base,
            answer=answer,
            # The model writes in the reply language; a note says when the source is in
            # another one (agents.llm_guard.with_source_note).
            answer_language=base.reply_language if answer else None,
            sources=sources,
            confidence=round(checked.confidence, 4) if answer else 0.0,
            department=checked.department or base.department,
            urgent=base.urgent or checked.urgent,
            personal_case=base.personal_case or checked.personal_case,
            wants_human=base.wants_human or checked.wants_human,
            reason=f"{checked.reason}; retrieval: {base.reason}",
            scores=scores,
            usage=usage,
        )

    def _source(self, doc_id: str, base: Assessment) -> SourceRef:
        doc = self.offline.docs[doc_id]
        return SourceRef(
            doc_id=doc.id,
            title=doc.title_in(base.reply_language),
            # The offline agent's own link rule: the version the resident can read.
            url=self.offline.source_url(doc, base.reply_language),
        )

    def _fallback(self, base: Assessment, why: str, latency_ms: float | None) -> Assessment:
        usage = AgentUsage(
            model=self.model,
            prompt_version=PROMPT_VERSION,
            latency_ms=None if latency_ms is None else round(latency_ms, 1),
            fallback=why,
        )
        if self.settings.llm_fallback == "offline":
            return _updated(
                base, usage=usage, reason=f"the AI model is unavailable ({why}); {base.reason}"
            )
        return _updated(
            base,
            answer=None,
            answer_language=None,
            sources=(),
            confidence=0.0,
            usage=usage,
            reason=f"the AI model is unavailable ({why}): people answer",
        )

    def _breaker_changed(self, change: BreakerChange) -> None:
        log.warning(
            "model endpoint %s: circuit %s -> %s (%s)",
            self._endpoint,
            change.old,
            change.new,
            change.reason,
        )
        if self._on_circuit is not None:
            self._on_circuit(change.new)

    def _retrying(self, retry: Retry) -> None:
        log.info(
            "model call to %s failed (%s); try %d again in %.2f s",
            self._endpoint,
            failure_kind(retry.error),
            retry.attempt + 1,
            retry.delay,
        )


def llm_configured(settings: Settings) -> bool:
    """Whether an endpoint and a model (or an Azure deployment) are configured."""
    return bool(settings.llm_base_url and (settings.llm_model or settings.llm_azure_deployment))


def llm_agent_from_settings(
    settings: Settings,
    offline: OfflineAgent,
    on_circuit: Callable[[str], None] | None = None,
) -> LlmAgent | None:
    """The LLM agent when an endpoint and a model are configured, else None (offline stays)."""
    if not llm_configured(settings):
        return None
    return LlmAgent(settings, offline, on_circuit=on_circuit)
