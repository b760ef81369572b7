"""The parts as separate processes against one NATS and one database: ``neuvonta gateway``
(the resident side), ``neuvonta console`` (the staff side) and ``neuvonta worker``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.embedded import EmbeddedNats
from tests.e2e.conftest import REPO, _env
from tests.e2e.test_api_flow import new_session, send, wait_for
from tests.fault.cluster import free_port


def wait_http(url: str, log: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


@pytest.fixture
def apart(tmp_path: Path) -> Iterator[dict[str, str]]:
    nats = EmbeddedNats(tmp_path / "nats")
    nats_url = nats.start()
    ports = {"gateway": free_port(), "console": free_port(), "worker": free_port()}
    env = {
        **_env(),
        # A cluster's servers, comma-separated; the second is not there (a node that is down).
        "NATS_URL": f"{nats_url},nats://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'neuvonta.db'}",
        "NEUVONTA_AGENT": "noop",
        "NEUVONTA_WORKER_HTTP_PORT": str(ports["worker"]),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for part, port in ports.items():
            log = tmp_path / f"{part}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "router.cli", part,
                         "--data-dir", str(tmp_path / part),
                         *(("--port", str(port)) if part != "worker" else ())],
                        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/livez", log, procs[-1])
        yield {part: f"http://127.0.0.1:{port}" for part, port in ports.items()}
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        nats.stop()


def test_a_message_through_gateway_worker_and_console_as_separate_processes(
    apart: dict[str, str],
) -> None:
    gateway, console, worker = apart["gateway"], apart["console"], apart["worker"]
    with httpx.Client(base_url=gateway, timeout=10) as api:
        sid = new_session(api)
        send(api, sid, "Milloin kirjasto?")
        messages = wait_for(api, sid, "ai", timeout=30)
        assert [m["role"] for m in messages] == ["resident", "ai"]
        # The resident side serves no staff pages, and the staff side no chat.
        assert api.get("/console").status_code == 404
    assert httpx.get(f"{console}/console").status_code == 200
    assert httpx.post(f"{console}/api/chat/sessions", json={}).status_code == 404
    # The worker answers probes and shows the router's figures; the gateway shows none.
    health = httpx.get(f"{worker}/healthz").json()
    assert health == {"status": "ok", "nats": "ok", "database": "ok"}
    figures = httpx.get(f"{worker}/metrics").text
    assert 'neuvonta_messages_answered_total{channel="web"} 1.0' in figures
    assert "neuvonta_messages_answered" not in httpx.get(f"{gateway}/metrics").text
    assert json.loads(httpx.get(f"{gateway}/healthz").text)["status"] == "ok"
