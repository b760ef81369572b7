"""A municipality's own queues (NEUVONTA_QUEUES_FILE) through the real router, CLI and server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from agents.base import Assessment, TriageRequest
from router.app import RouterWorker, initial_policy
from router.cli import app
from router.events import Address, Channel, MessageReceived, ReplyRequested
from router.subjects import reply_requested
from tests.integration.harness import (
    ScriptedAgent,
    collect,
    eventually,
    make_settings,
    rows,
    services,
)

HKI = ZoneInfo("Europe/Helsinki")

QUEUES = """
[[queue]]
name = "general"
label = { fi = "Neuvonta" }
departments = ["P7"]

[[queue]]
name = "tekninen"
label = { fi = "Tekninen toimi", sv = "Tekniska verket", en = "Technical services" }
departments = ["P2"]
first_response_minutes = 30
[queue.hours]
mon = "24h"
tue = "24h"
wed = "24h"
thu = "24h"
fri = "24h"
sat = "24h"
sun = "24h"
"""


def wants_a_person_about_building(request: TriageRequest) -> Assessment:
    return Assessment(
        language="fi",
        reply_language="fi",
        answer="Rakennuslupa haetaan …",
        answer_language="fi",
        # Sure enough of the department to route there (above the routing floor).
        confidence=0.45,
        department="P2",
        wants_human=True,
    )


async def test_a_ticket_goes_to_the_configured_queue_and_the_resident_hears_its_target(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    (tmp_path / "queues.toml").write_text(QUEUES, encoding="utf-8")
    settings = make_settings(tmp_path, nats_url, database_url, queues_file=tmp_path / "queues.toml")
    async with services(settings) as svc:
        assert [q.name for q in svc.queues] == ["general", "tekninen"]

        async def behave(request: TriageRequest) -> Assessment:
            return wants_a_person_about_building(request)

        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        run = RouterWorker(svc, ScriptedAgent(behave), initial_policy(settings, svc.queues))
        task = asyncio.create_task(run.run())
        try:
            await asyncio.wait_for(run.ready.wait(), 10)
            sent = datetime.now(HKI)
            await svc.publisher.publish(
                MessageReceived(
                    channel=Channel.SMS,
                    provider_message_id="SMQ1",
                    sender=Address(channel=Channel.SMS, value="+358401234567"),
                    text="Haluan puhua ihmisen kanssa terassin rakennusluvasta",
                )
            )
            await eventually(lambda: _some(replies), what="the handoff notice")
            got = datetime.now(HKI)
        finally:
            run.stop()
            await asyncio.wait_for(task, 10)
        (ticket,) = await rows(svc, "ticket")
        assert ticket["queue"] == "tekninen"
        # Open round the clock with a 30-minute target: the notice promises half an hour on.
        assert ticket["case_number"] in replies[0].text
        promised = re.search(
            r"Pyrimme vastaamaan viimeistään (tänään|huomenna) klo (\d{1,2})\.(\d{2})\.",
            replies[0].text,
        )
        assert promised is not None, replies[0].text
        day = sent.date() + timedelta(days=promised[1] == "huomenna")
        due = datetime(day.year, day.month, day.day, int(promised[2]), int(promised[3]), tzinfo=HKI)
        assert sent + timedelta(minutes=29) < due <= got + timedelta(minutes=30)


async def _some(items: list[ReplyRequested]) -> bool:
    return bool(items)


def test_queues_check_and_show(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(QUEUES, encoding="utf-8")
    bad.write_text(QUEUES.replace('"general"', '"yleinen"').replace('"24h"', '"8-25"', 1))
    r = CliRunner().invoke(app, ["queues", "check", str(good)])
    assert r.exit_code == 0 and "2 queues, fine (general, tekninen)" in r.output
    r = CliRunner().invoke(app, ["queues", "check", str(bad)])
    assert r.exit_code == 2
    assert "hours.mon: '8-25' is not a time of day" in r.output
    assert "there is no 'general' queue" in r.output
    r = CliRunner().invoke(
        app, ["queues", "show"], env={"NEUVONTA_QUEUES_FILE": str(good), "COLUMNS": "200"}
    )
    assert r.exit_code == 0 and "Technical services" in r.output and "30 min" in r.output


def test_serve_refuses_a_broken_queues_file_with_the_reasons(tmp_path: Path) -> None:
    bad = tmp_path / "queues.toml"
    bad.write_text('[[queue]]\nname = "general"\nlabel = { fi = "A" }\nhours = { mon = "x" }\n')
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "var"),
            "--port",
            "0",
        ],
        env={**env, "NEUVONTA_QUEUES_FILE": str(bad)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-1500:]
    assert f"NEUVONTA_QUEUES_FILE {bad}" in done.stderr
    assert "hours.mon: 'x' is not like" in done.stderr
