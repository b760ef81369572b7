"""A running ``neuvonta serve`` (a real subprocess on a free port) for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]
# The first start creates the admin demo account with this password.
DEMO_USER = "demo"
DEMO_PASSWORD = "e2e-secret"


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "NEUVONTA_CONSOLE_PASSWORD": DEMO_PASSWORD,
        "NEUVONTA_LOG_LEVEL": "INFO",
        # Every test client is 127.0.0.1: the per-address limit would be shared by all tests
        # of a module (the limits have their own tests).
        "NEUVONTA_RATE_LIMIT_IP": "0",
    }
    for leak in ("NATS_URL", "DATABASE_URL", "NEUVONTA_NATS_URL", "NEUVONTA_DATABASE_URL"):
        env.pop(leak, None)
    return env


@dataclass(frozen=True)
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    user: str
    password: str

    @contextlib.contextmanager
    def staff_client(
        self,
        username: str | None = None,
        password: str | None = None,
        timeout: float | httpx.Timeout = 10,
    ) -> Iterator[httpx.Client]:
        """An httpx client signed in to the console API (the demo admin unless told) that
        sends the CSRF header; it signs out at the end."""
        with httpx.Client(base_url=self.url, timeout=timeout) as client:
            r = client.post(
                "/api/auth/login",
                json={"username": username or self.user, "password": password or self.password},
            )
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield client
            client.post("/api/auth/logout")

    def users(self, *args: str, stdin: str = "") -> str:
        """``neuvonta users …`` on this server's data folder (the server sees it at once)."""
        done = subprocess.run(
            [sys.executable, "-m", "router.cli", "users", *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            text=True,
            cwd=REPO,
            env=_env(),
            capture_output=True,
            check=True,
        )
        return done.stdout

    def add_user(
        self, username: str, password: str, role: str = "agent", queues: Sequence[str] = ()
    ) -> None:
        self.users(
            "add",
            username,
            "--role",
            role,
            *(arg for q in queues for arg in ("--queue", q)),
            "--password-stdin",
            stdin=password + "\n",
        )

    def log(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_server(
    data_dir: Path, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> RunningServer:
    """``neuvonta serve`` on ``data_dir`` (port 0 unless ``--port`` is in ``args``), with
    ``env`` added to the environment."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**_env(), **(env or {})}
    with (data_dir / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "router.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                *(() if "--port" in args else ("--port", "0")),
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
            return RunningServer(url, data_dir, process, DEMO_USER, DEMO_PASSWORD)
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
    """A client with no sign-in, as a resident's browser."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def staff(server: RunningServer) -> Iterator[httpx.Client]:
    """A client signed in to the console API as the demo admin."""
    with server.staff_client() as client:
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
