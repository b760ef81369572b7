"""Admin thresholds: the API, the audit, optimistic versions, and live reload into a running
router worker through NATS KV, on a real nats-server and real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.base import Assessment, TriageRequest
from handoff.admin.api import ADMINS_ONLY
from handoff.auth import BAD_CSRF, NOT_SIGNED_IN, hash_password
from handoff.policy_store import KEY, PolicyStore, StaleVersion
from handoff.queues import DEFAULT_QUEUES
from handoff.thresholds import Thresholds, ThresholdState
from router.app import Services, initial_policy, policy_store
from router.bus import config_bucket
from router.events import Address, Channel, MessageReceived
from router.web import create_web_app, staff_store
from tests.integration.harness import (
    ScriptedAgent,
    WorkerRun,
    eventually,
    library_answer,
    make_settings,
    rows,
    services,
    worker,
)
from tests.integration.staff_helpers import client, sign_in

ADMIN_PASSWORD = "boss-password-1"
AGENT_PASSWORD = "anna-password-1"
QUEUE = "culture-leisure"  # where the scripted agent's department P25 goes
LIVE_WITHIN = 2.0  # seconds from a saved change to the workers using it


def fairly_sure() -> ScriptedAgent:
    """Answers every question about the library with confidence 0.7."""

    async def behave(request: TriageRequest) -> Assessment:
        return library_answer(request).model_copy(update={"confidence": 0.7})

    return ScriptedAgent(behave)


def message(n: int) -> MessageReceived:
    """A new resident each time: a handoff in one conversation does not hold the next."""
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=f"SM-threshold-{n}",
        sender=Address(channel=Channel.SMS, value=f"+35840123{n:04d}"),
        text="Milloin kirjasto on auki lauantaina?",
    )


async def decision_for(svc: Services, n: int) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def decided() -> bool:
        found[:] = [
            d
            for d in await rows(svc, "decision")
            if any(
                m["dedup_key"] == f"sms:SM-threshold-{n}"
                for m in await rows(svc, "message", id=d["message_id"])
            )
        ]
        return bool(found)

    await eventually(decided, what=f"the decision on message {n}")
    return found[0]


@contextlib.asynccontextmanager
async def admin_app(
    tmp_path: Path, nats_url: str, database_url: str
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = staff_store(svc)
        await store.add("boss", hash_password(ADMIN_PASSWORD), "admin")
        await store.add("anna", hash_password(AGENT_PASSWORD), "agent", ["housing"])
        async with client(create_web_app(svc)) as c:
            yield svc, c


async def wait_for_version(run: WorkerRun, version: int) -> float:
    """Seconds until the running worker decides under ``version``."""
    started = time.monotonic()
    while run.worker.policy.version != version:
        assert time.monotonic() - started < LIVE_WITHIN, (
            f"the worker still uses version {run.worker.policy.version}, not {version}"
        )
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_a_change_through_the_api_reaches_the_running_worker_and_the_next_decision(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with admin_app(tmp_path, nats_url, database_url) as (svc, c):
        await sign_in(c, "boss", ADMIN_PASSWORD)
        async with worker(svc, fairly_sure()) as run:
            await svc.publisher.publish(message(1))
            first = await decision_for(svc, 1)
            assert (first["action"], first["threshold"], first["policy_version"]) == (
                "answer",
                0.5,
                0,
            )

            r = await c.get("/api/admin/thresholds")
            assert r.status_code == 200
            assert r.headers["cache-control"] == "no-store"
            assert r.json() == {
                "version": 0,
                "default": 0.5,
                "queues": {},
                "always_handoff": [],
                "changed_by": None,
                "changed_at": None,
            }

            change = {"version": 0, "default": 0.5, "queues": {QUEUE: 0.8}, "note": "pilot"}
            r = await c.put("/api/admin/thresholds", json=change)
            assert r.status_code == 200, r.text
            saved = r.json()
            assert saved["version"] == 1
            assert saved["queues"] == {QUEUE: 0.8}
            assert saved["changed_by"] == "boss"
            assert saved["changed"] is True and saved["live"] is True
            took = await wait_for_version(run, 1)
            print(f"\nlive reload: the worker used version 1 {took * 1000:.0f} ms after the PUT")

            await svc.publisher.publish(message(2))
            second = await decision_for(svc, 2)
            assert (second["action"], second["reason"], second["threshold"]) == (
                "handoff",
                "low_confidence",
                0.8,
            )
            assert second["policy_version"] == 1

            # Always to a person in that queue: the next decision says so.
            rule = {"version": 1, "default": 0.5, "queues": {}, "always_handoff": [QUEUE]}
            r = await c.put("/api/admin/thresholds", json=rule)
            assert r.status_code == 200, r.text
            await wait_for_version(run, 2)
            await svc.publisher.publish(message(3))
            third = await decision_for(svc, 3)
            assert (third["action"], third["reason"], third["policy_version"]) == (
                "handoff",
                "queue_rule",
                2,
            )

        # A change based on an older version is refused; nothing is recorded.
        r = await c.put("/api/admin/thresholds", json={**change, "version": 1})
        assert r.status_code == 409
        assert "now version 2 by boss" in r.json()["detail"]
        # The same setting again is no new version.
        r = await c.put("/api/admin/thresholds", json={**rule, "version": 2})
        assert r.status_code == 200
        assert (r.json()["version"], r.json()["changed"]) == (2, False)

        r = await c.get("/api/admin/thresholds/history")
        assert r.status_code == 200
        history = r.json()
        assert [h["version"] for h in history] == [2, 1]
        assert all(h["changed_by"] == "boss" for h in history)
        one = history[1]
        assert one["note"] == "pilot"
        assert one["old"] == {"default": 0.5, "queues": {}, "always_handoff": []}
        assert one["new"] == {"default": 0.5, "queues": {QUEUE: 0.8}, "always_handoff": []}
        assert one["changes"] == [{"what": "queue", "queue": QUEUE, "old": None, "new": 0.8}]
        assert history[0]["changes"] == [
            {"what": "queue", "queue": QUEUE, "old": 0.8, "new": None},
            {"what": "always_handoff", "queue": QUEUE, "old": False, "new": True},
        ]
        assert history[0]["note"] is None
        assert history[0]["changed_at"] > one["changed_at"]
        r = await c.get("/api/admin/thresholds/history", params={"limit": 1})
        assert [h["version"] for h in r.json()] == [2]


async def test_two_changes_of_the_same_version_one_wins(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = policy_store(svc)

        async def change(by: str, value: float) -> object:
            try:
                return await store.save(
                    lambda t: t.model_copy(update={"default": value}), by=by, based_on=0
                )
            except StaleVersion as e:
                return e

        results = await asyncio.gather(change("boss", 0.6), change("anna", 0.7))
        refused = [r for r in results if isinstance(r, StaleVersion)]
        assert len(refused) == 1
        current = await store.current()
        assert current.version == 1
        assert refused[0].current.version == 1
        assert len(await store.history()) == 1
        assert await store.read_kv() == current


async def test_only_admins_may_see_or_change_the_thresholds_and_changes_need_csrf(
    tmp_path: Path, nats_url: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with admin_app(tmp_path, nats_url, database_url) as (svc, c):
        body = {"default": 0.6, "queues": {}}
        # Signed out: 401 from the API; the page itself is open (it says where to sign in).
        for method, path in (
            ("GET", "/api/admin/thresholds"),
            ("PUT", "/api/admin/thresholds"),
            ("GET", "/api/admin/thresholds/history"),
        ):
            r = await c.request(method, path, json=body if method == "PUT" else None)
            assert (r.status_code, r.json()) == (401, {"detail": NOT_SIGNED_IN}), path
        page = await c.get("/admin")
        assert page.status_code == 200
        assert 'id="thresholds-form"' in page.text
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        for asset in ("admin.js", "admin.css"):
            assert (await c.get(f"/admin/{asset}")).status_code == 200
        assert (await c.get("/admin/other.js")).status_code == 422

        # An agent: 403, also with a valid CSRF token.
        await sign_in(c, "anna", AGENT_PASSWORD)
        for method, path in (
            ("GET", "/api/admin/thresholds"),
            ("PUT", "/api/admin/thresholds"),
            ("GET", "/api/admin/thresholds/history"),
        ):
            r = await c.request(method, path, json=body if method == "PUT" else None)
            assert (r.status_code, r.json()) == (403, {"detail": ADMINS_ONLY}), path

        # An admin without the CSRF header: 403.
        await sign_in(c, "boss", ADMIN_PASSWORD)
        token = c.headers.pop("X-CSRF-Token")
        r = await c.put("/api/admin/thresholds", json=body)
        assert (r.status_code, r.json()) == (403, {"detail": BAD_CSRF})
        c.headers["X-CSRF-Token"] = token

        # Bad values: 422 listing every problem, with the valid queue names.
        r = await c.put(
            "/api/admin/thresholds",
            json={
                "default": 1.5,
                "queues": {"helth": 0.8, "health": -0.1},
                "always_handoff": ["x"],
            },
        )
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert [(d["loc"], d["type"]) for d in detail] == [
            (["body", "default"], "threshold_range"),
            (["body", "queues", "helth"], "unknown_queue"),
            (["body", "queues", "health"], "threshold_range"),
            (["body", "always_handoff", 0], "unknown_queue"),
        ]
        names = ", ".join(q.name for q in DEFAULT_QUEUES)
        assert detail[1]["msg"] == f"unknown queue 'helth'; the queues are: {names}"
        r = await c.put("/api/admin/thresholds", json={"default": "lots", "queues": {}})
        assert r.status_code == 422
        r = await c.put("/api/admin/thresholds", json={"default": 0.5, "queues": {}, "x": 1})
        assert r.status_code == 422
        assert (await c.get("/api/admin/thresholds")).json()["version"] == 0
        assert (await c.get("/api/admin/thresholds/history")).json() == []

        r = await c.put("/api/admin/thresholds", json=body)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert (await store_of(svc).current()).default == 0.6


def store_of(svc: Services) -> PolicyStore:
    return policy_store(svc)


async def test_a_worker_starts_with_the_newest_of_database_and_kv(
    tmp_path: Path, nats_url: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        names = [q.name for q in DEFAULT_QUEUES]
        # A change made while NATS was out of reach: in the database only.
        offline = PolicyStore(svc.engine, initial_policy(svc.settings), queues=names, js=None)
        saved = await offline.save(
            lambda t: t.model_copy(update={"queues": {QUEUE: 0.9}}), by="cli"
        )
        assert (saved.state.version, saved.live) == (1, False)
        store = store_of(svc)
        assert await store.read_kv() is None

        async with worker(svc, fairly_sure()) as run:
            # The database is newer: the worker uses it and puts it into KV for the others.
            assert run.worker.policy.version == 1
            assert run.worker.policy.threshold_for(QUEUE) == 0.9
            kv_state = await store.read_kv()
            assert kv_state is not None and kv_state.version == 1

            # A newer KV entry (say, from a database restored from a backup) wins too, live.
            kv = await config_bucket(svc.broker.connection.jetstream())
            newer = ThresholdState.at(5, Thresholds(default=0.4), changed_by="restore")
            await kv.put(KEY, newer.to_json())
            await wait_for_version(run, 5)
            assert run.worker.policy.default_threshold == 0.4
            # An older version never replaces a newer one, in KV or in the worker.
            assert await store.publish(saved.state) is True
            assert (await store.read_kv()) == newer
            assert run.worker.live.adopt(saved.state, "test") is False
            assert run.worker.policy.version == 5
            # A change now goes above the KV entry's version, so it is used.
            after = await store.save(lambda t: t.model_copy(update={"default": 0.45}), by="boss")
            assert after.state.version == 6
            await wait_for_version(run, 6)
            assert [h.version for h in await store.history()] == [6, 1]

        # A new worker starts with the newest.
        async with worker(svc, fairly_sure()) as again:
            assert again.worker.policy.version == 6


@pytest.mark.parametrize("garbage", [b"not json", b'{"version": -1}'])
async def test_an_unreadable_kv_entry_is_ignored(
    tmp_path: Path, nats_url: str, garbage: bytes
) -> None:
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        kv = await config_bucket(svc.broker.connection.jetstream())
        await kv.put(KEY, garbage)
        async with worker(svc, fairly_sure()) as run:
            assert run.worker.policy.version == 0
            # The next change replaces it and is used.
            await store_of(svc).save(lambda t: t.model_copy(update={"default": 0.45}), by="boss")
            await wait_for_version(run, 1)
