"""Running the processes: everything in one (``serve``), or the gateway or a worker alone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from handoff.queue_config import QueueConfigError
from router import subjects
from router.app import (
    RouterWorker,
    Services,
    build_agent,
    create_ops_app,
    initial_policy,
    load_knowledge,
    settle_agent,
    shutdown_agent,
)
from router.embedded import EmbeddedNats
from router.metrics import Metrics, fresh_workers_dir
from router.processes import WorkerProcesses
from router.settings import Settings

if TYPE_CHECKING:
    from channels.gateway import ChannelGateway

log = logging.getLogger("neuvonta")

# Seconds a stop waits for the HTTP server and the router to finish what they have in hand,
# and then for retention's round (deploy files' grace periods cover these).
TASKS_DRAIN = 30.0
RETENTION_DRAIN = 10.0


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the process shuts down as a whole."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PortInUse(RuntimeError):
    pass


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise PortInUse(
            f"cannot listen on {host}:{port} ({e.strerror}); choose another with --port "
            "or NEUVONTA_HTTP_PORT"
        ) from e
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True, slots=True)
class Parts:
    """What one process runs. ``serve``: everything; the others one part each."""

    # The resident side: web chat, provider webhooks and inbound servers, deliveries.
    residents: bool = True
    # The staff side: the agent console, admin pages, their API.
    staff: bool = True
    worker: bool = True

    @property
    def web(self) -> bool:
        return self.residents or self.staff

    @property
    def name(self) -> str:
        if self.residents and self.staff and self.worker:
            return "serve"
        return (
            "+".join(n for n, on in (("gateway", self.residents), ("console", self.staff)) if on)
            or "worker"
        )


def _banner(
    url: str,
    settings: Settings,
    password: str | None,
    *,
    embedded: bool,
    parts: Parts = Parts(),
    channels: Sequence[str] = (),
) -> str:
    login = (
        f"      demo login:         {settings.console_user.strip().lower()} / {password}"
        if password
        else "      sign in:            staff accounts (neuvonta users add / list)"
    )
    resident_lines = [f"  Web chat (residents):   {url}/"]
    staff_lines = [
        f"  Agent console:          {url}/console",
        login,
        f"  Thresholds, what-if:    {url}/admin",
        f"  Analytics (admins):     {url}/admin/analytics",
    ]
    lines = [
        "",
        f"  Neuvonta is running ({parts.name}).",
        "",
        *(resident_lines if parts.residents else ()),
        *(staff_lines if parts.staff else ()),
        f"  API documentation:      {url}/api/docs",
        f"  Health and metrics:     {url}/healthz · {url}/metrics",
        "",
        *(("  Channels:", *(f"    {line}" for line in channels), "") if parts.residents else ()),
        f"  Data folder: {settings.data_dir.resolve()}"
        + (" (embedded NATS and SQLite)" if embedded else ""),
        "  Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


async def workers_pulling(services: Services) -> int:
    """How many router workers are waiting for messages right now (0 when none yet)."""
    js = services.broker.connection.jetstream()
    try:
        info = await js.consumer_info(
            subjects.Stream.CONVERSATIONS.value, subjects.Durable.ROUTER_INBOUND.value
        )
    except Exception:  # the first worker has not created its consumer yet
        return 0
    return int(info.num_waiting or 0)


async def run(settings: Settings, parts: Parts = Parts()) -> None:
    """Run the chosen parts until SIGINT/SIGTERM, then drain and stop cleanly.

    ``serve`` runs everything: the web in this process and ``settings.worker_processes``
    router workers as child processes (0: the router in this process too).
    """
    started = time.monotonic()
    web, worker = parts.web, parts.worker
    part = parts.name
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    sock = bind(settings.http_host, settings.http_port) if web else None
    # A worker alone answers health probes and metric scrapes on a port of its own if asked.
    ops_sock = (
        bind(settings.http_host, settings.worker_http_port)
        if not web and settings.worker_http_port is not None
        else None
    )
    nats: EmbeddedNats | None = None
    nats_url = settings.nats_url
    if nats_url is None:
        if not (web and worker):
            raise SystemExit("NATS_URL is needed when the gateway and workers run apart")
        nats = EmbeddedNats(settings.data_dir / "nats")
        nats_url = await asyncio.to_thread(nats.start)
        log.info("embedded nats-server at %s", nats_url)

    in_process = worker and not (web and settings.worker_processes > 0)
    metrics_dir = settings.data_dir / "metrics"
    if worker and not in_process:  # the router's figures come from the child workers
        metrics = Metrics(router=False, workers_dir=fresh_workers_dir(metrics_dir))
    else:  # a gateway or console alone has no router figures to show
        metrics = Metrics(router=worker)
    services = Services.create(settings, nats_url, metrics=metrics)
    tasks: list[asyncio.Task[None]] = []
    server: _Server | None = None
    router_worker: RouterWorker | None = None
    children: WorkerProcesses | None = None
    site: _Site | None = None
    try:
        await services.start()
        if worker and not in_process:
            children = WorkerProcesses(
                settings, nats_url, settings.worker_processes, metrics_dir=metrics_dir
            )
            children.start()
        if in_process:
            router_worker = await _start_router(services, tasks)
        if web and sock is not None:
            site = await _start_web(services, parts, stop)
            # The web side got ready while the child workers started; the banner waits for
            # them, so that a resident's first message gets its answer at once.
            if children is not None:
                await _wait_for_workers(services, stop)
            server = await _serve_http(site.app, sock, tasks, "web")
            host, port = sock.getsockname()[:2]
            url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
            _write_runtime_file(settings.data_dir, url, nats_url)
            banner = _banner(
                url,
                settings,
                site.password,
                embedded=nats is not None,
                parts=parts,
                channels=site.gateway.summary() if site.gateway else (),
            )
            print(banner, flush=True)
        if ops_sock is not None:
            server = await _serve_http(create_ops_app(services), ops_sock, tasks, "ops")
            log.info("worker health and metrics on port %d", ops_sock.getsockname()[1])
        # In a thread of its own: a large knowledge base's index takes a while to build, and
        # neither the start nor a Ctrl-C meanwhile should wait for it.
        threading.Thread(
            target=settle_agent,
            args=(router_worker.agent if router_worker is not None else None,),
            name="settle-heap",
            daemon=True,
        ).start()
        log.info("%s started in %.1f s", part, time.monotonic() - started)
        stop_wait = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        for t in done:
            if t is not stop_wait and t.exception():
                log.error("%s stopped unexpectedly", t.get_name(), exc_info=t.exception())
        if web:  # the process in the foreground speaks for the whole
            print("\n  Stopping: finishing messages in hand …", flush=True)
    finally:
        if server is not None:
            server.should_exit = True
        if router_worker is not None:
            router_worker.stop()
        if children is not None:
            await children.stop()
        if tasks:
            await asyncio.wait(tasks, timeout=TASKS_DRAIN)
        stop.set()
        if site is not None:
            await site.stop()
        if router_worker is not None:
            await shutdown_agent(router_worker.agent)
        await services.stop()
        if nats is not None:
            await asyncio.to_thread(nats.stop)
        for s in (sock, ops_sock):
            if s is not None:
                s.close()
        with contextlib.suppress(FileNotFoundError):
            (settings.data_dir / "serve.json").unlink()
        log.info("%s stopped", part)


async def _start_router(services: Services, tasks: list[asyncio.Task[None]]) -> RouterWorker:
    """The router in this process: the agent over the knowledge base, then its consumer."""
    settings = services.settings
    docs = await load_knowledge(services)
    t0 = time.monotonic()
    agent = await asyncio.to_thread(build_agent, settings, docs, services.metrics)
    log.info(
        "%s agent ready over %d documents in %.1f s", agent.name, len(docs), time.monotonic() - t0
    )
    worker = RouterWorker(services, agent, initial_policy(settings, services.queues))
    tasks.append(asyncio.create_task(worker.run(), name="router"))
    await asyncio.wait_for(worker.ready.wait(), timeout=30)
    return worker


@dataclass(frozen=True, slots=True)
class _Site:
    """The web side, started and ready to serve."""

    app: Any
    gateway: ChannelGateway | None  # the provider channels (the resident side)
    housekeeping: asyncio.Task[None] | None  # retention (the staff side)
    password: str | None  # of the demo login, when this start made it

    async def stop(self) -> None:
        """After the HTTP server: the channels' last deliveries, then retention's round."""
        if self.gateway is not None:
            await self.gateway.stop()
        if self.housekeeping is not None:
            await asyncio.wait([self.housekeeping], timeout=RETENTION_DRAIN)


async def _start_web(services: Services, parts: Parts, stop: asyncio.Event) -> _Site:
    # Only here: a worker alone never loads the web side (about a second of imports).
    from handoff.auth import decoy_hash, ensure_demo_user
    from handoff.retention import run_retention
    from router.web import channel_gateway, create_web_app, staff_store, subscribe_browsers

    settings = services.settings
    await subscribe_browsers(services.broker.connection, services.hub)
    password = None
    if parts.staff:
        password = await ensure_demo_user(
            staff_store(services), settings.console_user, settings.data_dir, _secret(settings)
        )
        # Made now, the first sign-in to an unknown account takes no longer than others.
        await asyncio.to_thread(decoy_hash)
    gateway = channel_gateway(services) if parts.residents else None
    app = create_web_app(services, gateway, residents=parts.residents, staff=parts.staff)
    # Background work last: nothing above can leave it running when it fails.
    housekeeping = None
    if parts.staff:  # retention runs beside the staff side (one such process is enough)
        housekeeping = asyncio.create_task(
            run_retention(services.engine, settings, stop), name="retention"
        )
    if gateway is not None:
        gateway.start(services.broker.connection.jetstream(), stop)
    return _Site(app, gateway, housekeeping, password)


async def _serve_http(
    app: Any, sock: socket.socket, tasks: list[asyncio.Task[None]], name: str
) -> _Server:
    """Uvicorn on ``sock`` as one of ``tasks``, once it accepts connections."""
    server = _Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
    )
    tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name=name))
    while not server.started:
        if tasks[-1].done():
            await tasks[-1]
        await asyncio.sleep(0.02)
    return server


async def _wait_for_workers(
    services: Services, stop: asyncio.Event, patience: float = 180.0
) -> None:
    """Until a worker pulls messages: a resident's first message should get an answer."""
    deadline = time.monotonic() + patience
    while not stop.is_set() and await workers_pulling(services) == 0:
        if time.monotonic() > deadline:
            log.warning("no router worker is ready yet; messages wait in JetStream meanwhile")
            return
        await asyncio.sleep(0.1)


def _secret(settings: Settings) -> str | None:
    return settings.console_password.get_secret_value() if settings.console_password else None


def _write_runtime_file(data_dir: Path, url: str, nats_url: str) -> None:
    """Where a running ``serve`` listens (for scripts and tests that start it on port 0)."""
    path = data_dir / "serve.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "nats_url": nats_url, "pid": os.getpid()}))
    tmp.replace(path)


def run_blocking(settings: Settings, parts: Parts = Parts()) -> None:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run(settings, parts))
    except PortInUse as e:
        print(f"neuvonta: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except QueueConfigError as e:
        print(f"neuvonta: NEUVONTA_QUEUES_FILE {settings.queues_file}:", file=sys.stderr)
        print("\n".join(f"  {p}" for p in e.problems), file=sys.stderr)
        raise SystemExit(2) from None
