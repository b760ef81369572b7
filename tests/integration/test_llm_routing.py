"""NEUVONTA_AGENT=llm through the router: answers from the model with its audit record,
and the offline agent answering while the model endpoint fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router.app import build_agent, shutdown_agent
from router.events import ReplyRequested
from router.metrics import Metrics
from router.subjects import ALL_REPLIES_REQUESTED
from tests.fakes.openai_server import OpenAIFake
from tests.integration.harness import collect, eventually, make_settings, rows, services, worker
from tests.integration.test_kb_and_eval_cli import DEMO_KB, quote_first_source
from tests.integration.test_ticket_lifecycle import sms


def docs() -> list[Any]:
    from agents.base import Document

    lines = DEMO_KB.read_text(encoding="utf-8").splitlines()
    return [Document.model_validate(json.loads(line)) for line in lines]


@pytest.mark.slow
async def test_the_router_answers_through_the_model_and_audits_it_then_survives_an_outage(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with OpenAIFake(default=quote_first_source) as fake:
        settings = make_settings(
            tmp_path,
            nats_url,
            sqlite_url,
            agent="llm",
            llm_base_url=fake.base_url,
            llm_api_key=fake.api_key,
            llm_model=fake.model,
            llm_price_prompt=0.01,
            llm_price_completion=0.03,
            llm_breaker_failures=1,
            llm_breaker_reset=60,
            agent_timeout=5.0,
        )
        metrics = Metrics()
        agent = build_agent(settings, docs(), metrics)
        assert agent.name == "llm"
        circuit = [line for line in metrics.render().decode().splitlines() if "circuit" in line]
        assert "neuvonta_llm_circuit_open 0.0" in circuit
        try:
            async with services(settings) as svc:
                replies = await collect(svc, ALL_REPLIES_REQUESTED, ReplyRequested)
                async with worker(svc, agent):
                    await svc.publisher.publish(
                        sms("Mitä kirjastossa voi tehdä ja miten lainaan kirjoja?", "SM1")
                    )
                    await eventually(lambda: _n(replies, 1), timeout=30, what="the answer")
                    fake.storm(500, 10)
                    await svc.publisher.publish(sms("Miten saan kirjastokortin?", "SM2"))
                    await eventually(lambda: _n(replies, 2), timeout=30, what="the 2nd reply")
                    assert b"neuvonta_llm_circuit_open 1.0" in metrics.render()
                decisions = sorted(await rows(svc, "decision"), key=lambda d: d["created_at"])
        finally:
            await shutdown_agent(agent)
    first, second = decisions
    assert first["llm_model"] == fake.model and first["prompt_version"]
    assert first["prompt_tokens"] == 321 and first["completion_tokens"] == 54
    assert first["llm_cost"] == pytest.approx(0.321 * 0.01 + 0.054 * 0.03)
    assert first["action"] == "answer" and first["llm_fallback"] is None
    assert 0 < first["llm_latency_ms"] <= first["latency_ms"]
    assert replies[0].sources, "the model's answer names its source"
    # The endpoint failed: the offline agent's assessment, recorded as a fallback.
    assert second["llm_fallback"] and second["llm_fallback"].startswith("error")
    assert replies[1].text


async def _n(items: list[ReplyRequested], n: int) -> bool:
    return len(items) >= n
