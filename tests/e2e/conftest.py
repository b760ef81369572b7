"""A running ``neuvonta serve`` (a real subprocess on a free port) for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    user: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def log(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_server(data_dir: Path, *args: str, timeout: float = 60.0) -> RunningServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "NEUVONTA_CONSOLE_PASSWORD": "e2e-secret",
        "NEUVONTA_LOG_LEVEL": "INFO",
    }
    for leak in ("NATS_URL", "DATABASE_URL", "NEUVONTA_NATS_URL", "NEUVONTA_DATABASE_URL"):
        env.pop(leak, None)
    with (data_dir / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "router.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                *args,
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    runtime = data_dir / "serve.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                "neuvonta serve exited:\n" + (data_dir / "serve.log").read_text(errors="replace")
            )
        if runtime.exists():
            url = json.loads(runtime.read_text())["url"]
            return RunningServer(url, data_dir, process, "demo", "e2e-secret")
        time.sleep(0.1)
    process.kill()
    raise AssertionError("neuvonta serve did not start in time")


def stop_server(server: RunningServer, timeout: float = 30.0) -> int:
    server.process.send_signal(signal.SIGINT)
    try:
        return server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise AssertionError("neuvonta serve did not stop on Ctrl-C") from None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per test module, with the offline agent and the demo knowledge base."""
    running = start_server(tmp_path_factory.mktemp("serve") / "var")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (no browser download).

    Per module: sync Playwright keeps an event loop running while it is open, which would
    break any async test collected after it.
    """
    if not Path(CHROMIUM).exists():
        missing("Chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield b
        finally:
            b.close()
