"""Load benchmark of the whole path: HTTP accept → JetStream → router → store → reply.

    python -m bench.load [--messages 5000] [--concurrency 64] [--rate 100 --seconds 20]

Starts ``neuvonta serve`` (embedded NATS, SQLite) on a free port, drives web chat
messages through its HTTP API and times each from the 202 to its reply event, then
measures a bare FastStream JetStream consume-and-publish loop in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import nats

from bench import baseline
from router.stats import percentile as nearest_rank

CORES = os.cpu_count() or 1

# 64 distinct resident questions in fi/sv/en about the demo knowledge base's services.
QUESTIONS = [
    json.loads(line)["text"]
    for line in (
        Path(__file__).resolve().parents[1] / "tests/unit/agents/data/synthetic-ptv.questions.jsonl"
    )
    .read_text(encoding="utf-8")
    .splitlines()
    if line.strip()
]


@dataclass
class Run:
    """Times on the wall clock: accepts stamped by the gateway, replies as a listener got them."""

    accepted: dict[str, float] = field(default_factory=dict)
    replied: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    # CPU milliseconds a reply by process role, and the share of all cores busy for the run.
    cpu_ms: dict[str, float] = field(default_factory=dict)
    cpu_share: float = 0.0

    def latencies_ms(self) -> list[float]:
        return sorted(
            (self.replied[m] - t) * 1000 for m, t in self.accepted.items() if m in self.replied
        )

    def span(self) -> tuple[float, float, float]:
        """(first accept, last accept, last reply)."""
        first = min(self.accepted.values(), default=0.0)
        last = max(self.accepted.values(), default=first)
        return first, last, max(self.replied.values(), default=first)


def percentile(values: list[float], q: float) -> float:
    """``router.stats.percentile`` of a fraction ``q`` (0.99), NaN without values."""
    p = nearest_rank(values, 100 * q)
    return float("nan") if p is None else p


def listen(nats_url: str, expected: int, deadline_s: float, out: Any) -> None:
    """In its own process, so that a busy load generator never delays a reply's timestamp."""

    async def main() -> None:
        accepted: dict[str, float] = {}
        replied: dict[str, float] = {}
        done = asyncio.Event()
        nc = await nats.connect(nats_url)

        async def on_received(msg: Any) -> None:
            body = json.loads(msg.data)
            accepted[body["message_id"]] = datetime.fromisoformat(body["occurred_at"]).timestamp()

        async def on_reply(msg: Any) -> None:
            now = time.time()
            body = json.loads(msg.data)
            if body.get("in_reply_to"):
                replied.setdefault(body["in_reply_to"], now)
                if len(replied) >= expected:
                    done.set()

        await nc.subscribe("neuvonta.v1.message.received.web", cb=on_received)
        await nc.subscribe("neuvonta.v1.reply.requested.web", cb=on_reply)
        await nc.flush()
        out.put("ready")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), deadline_s)
        await nc.close()
        out.put((accepted, replied))

    asyncio.run(main())


def fresh_postgres(server_url: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database on the PostgreSQL server of ``server_url`` for one run, and
    what drops it afterwards."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"neuvonta_bench_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    database = url.set(drivername="postgresql", database=name)
    return database.render_as_string(hide_password=False), lambda: asyncio.run(
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    )


class Server:
    def __init__(self, agent: str, workers: int = 1, database: str | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="neuvonta-bench-")
        self.postgres = database is not None
        data = Path(self.tmp.name) / "var"
        env = {
            **os.environ,
            "NEUVONTA_LOG_LEVEL": "WARNING",
            "NEUVONTA_CONSOLE_PASSWORD": secrets.token_urlsafe(16),
            # One load generator is one client address: no abuse limits here.
            "NEUVONTA_RATE_LIMIT_IP": "0",
            "NEUVONTA_RATE_LIMIT_SENDER": "0",
        }
        for leak in ("NATS_URL", "DATABASE_URL"):
            env.pop(leak, None)
        if database is not None:
            env["DATABASE_URL"] = database
        data.mkdir(parents=True)
        self.log = data / "serve.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "router.cli",
                    "serve",
                    "--data-dir",
                    str(data),
                    "--port",
                    "0",
                    "--agent",
                    agent,
                    "--workers",
                    str(workers),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        runtime = data / "serve.json"
        deadline = time.monotonic() + 60
        while not runtime.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("neuvonta serve did not start")
            time.sleep(0.05)
        info = json.loads(runtime.read_text())
        self.url: str = info["url"]
        self.nats_url: str = info["nats_url"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        problems = [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "WARNING" in line or "ERROR" in line
        ]
        if problems:
            kept = Path(tempfile.gettempdir()) / f"neuvonta-bench-{self.proc.pid}.log"
            kept.write_bytes(self.log.read_bytes())
            print(
                f"  ! the server logged {len(problems)} warnings/errors (log: {kept}), first:",
                *problems[:5],
                sep="\n    ",
                file=sys.stderr,
            )
        self.tmp.cleanup()


async def metric_sums(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    sums = {}
    for name in ("neuvonta_triage_latency_seconds", "neuvonta_reply_latency_seconds"):
        for kind in ("sum", "count"):
            m = re.search(rf"^{name}_{kind} ([0-9.e+-]+)$", text, re.M)
            sums[f"{name}_{kind}"] = float(m.group(1)) if m else 0.0
    return sums


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of user + system time) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _command(pid: int) -> str:
    """The process's name as it shows itself (PostgreSQL rewrites its command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[0]
    except OSError:
        return ""


def _role(pid: int) -> str:
    """What a process of the run is, from its command line."""
    if pid == os.getpid():
        return "load generator"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return "gone"
    if any("nats-server" in a for a in argv):
        return "NATS"
    if "router.cli" in argv:
        part = argv[argv.index("router.cli") + 1 : argv.index("router.cli") + 2]
        return {"worker": "router workers", "serve": "serve (web)"}.get(
            "".join(part), "".join(part)
        )
    if any("multiprocessing" in a for a in argv):
        return "reply listener"
    return Path(argv[0]).name


def cpu_by_process(postgres: bool = False) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of this process and all its descendants (the server, its workers
    and NATS, the reply listener), and with ``postgres`` every PostgreSQL process of the
    machine (the benchmark runs alone): pid → (role, seconds). Linux /proc only."""
    stats = {int(p): st for p in os.listdir("/proc") if p.isdigit() and (st := _proc_stat(p))}
    out: dict[int, tuple[str, float]] = {}
    if postgres:
        for pid, (_, seconds) in stats.items():
            if Path(_command(pid).split(" ")[0].rstrip(":")).name == "postgres":
                out[pid] = ("PostgreSQL", seconds)
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = (_role(pid), stats[pid][1])
        todo.extend(children.get(pid, []))
    return out


def settle(limit_s: float = 60.0, idle_share: float = 0.05) -> float:
    """Wait until the server's processes are idle (under ``idle_share`` of one core over half
    a second): after a start the workers still load the e5 sessions and tokenizer tables,
    build the lexical index and warm up in background threads, and that CPU must not be
    counted against the measured messages. Returns the seconds waited."""
    started = time.monotonic()
    last = cpu_by_process()
    while time.monotonic() - started < limit_s:
        time.sleep(0.5)
        now = cpu_by_process()
        busy = sum(cpu_used(last, now).values())
        last = now
        if busy < 0.5 * idle_share:
            break
    return time.monotonic() - started


def cpu_used(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds by role between two ``cpu_by_process`` snapshots (a process started in
    between: all of its time)."""
    by_role: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        used = seconds - before.get(pid, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + used
    return by_role


async def drive(
    server: Server,
    *,
    messages: int,
    concurrency: int,
    rate: float | None,
    seconds: float | None = None,
) -> tuple[Run, dict[str, float]]:
    run = Run()
    expected = messages if rate is None else int(rate * (seconds or 0))
    # Every message from its own resident: a conversation handed to a person gets no more
    # AI replies, and a burst of one resident's messages is not the load being measured.
    sessions = max(16, expected)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    listener = ctx.Process(target=listen, args=(server.nats_url, expected, 120.0, results))
    listener.start()
    await asyncio.to_thread(results.get, True, 30)  # "ready"
    posted: set[str] = set()
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    async with aiohttp.ClientSession(server.url, connector=connector) as http:

        async def new_session() -> str:
            async with http.post("/api/chat/sessions") as r:
                return str((await r.json())["session_id"])

        sids: list[str] = []
        while len(sids) < sessions:
            n = min(concurrency, sessions - len(sids))
            sids.extend(await asyncio.gather(*(new_session() for _ in range(n))))
        before = await metric_sums(http, server.url)
        cpu_before, started = cpu_by_process(server.postgres), time.monotonic()

        async def post(i: int) -> None:
            body = {"text": QUESTIONS[i % len(QUESTIONS)]}
            try:
                async with http.post(
                    f"/api/chat/sessions/{sids[i % sessions]}/messages", json=body
                ) as r:
                    if r.status != 202:
                        run.errors += 1
                        return
                    posted.add((await r.json())["message_id"])
            except aiohttp.ClientError:
                run.errors += 1

        if rate is None:
            counter = iter(range(messages))

            async def closed_loop() -> None:
                for i in counter:
                    await post(i)

            await asyncio.gather(*(closed_loop() for _ in range(concurrency)))
        else:
            tasks = []
            start = time.perf_counter()
            for i in range(expected):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(post(i)))
            await asyncio.gather(*tasks)
        accepted, replied = await asyncio.to_thread(results.get, True, 180)
        cpu_after, elapsed = cpu_by_process(server.postgres), time.monotonic() - started
        listener.join()
        after = await metric_sums(http, server.url)
    run.accepted = {m: t for m, t in accepted.items() if m in posted}
    run.replied = {m: t for m, t in replied.items() if m in posted}
    if len(run.replied) < len(posted):
        print(f"  ! only {len(run.replied)} of {len(posted)} replies arrived", file=sys.stderr)
    deltas = {k: after[k] - before[k] for k in after}
    used = cpu_used(cpu_before, cpu_after)
    run.cpu_ms = {role: 1000 * sec / max(1, len(run.replied)) for role, sec in used.items()}
    run.cpu_share = sum(used.values()) / elapsed / CORES
    return run, deltas


def report_closed(run: Run, bare: float) -> dict[str, Any]:
    lat = run.latencies_ms()
    first, last_accept, last_reply = run.span()
    accepted_rate = len(run.accepted) / max(1e-9, last_accept - first)
    answered_rate = len(run.replied) / max(1e-9, last_reply - first)
    return {
        "messages": float(len(run.accepted)),
        "errors": float(run.errors),
        "accepted_msgs_per_s": accepted_rate,
        "answered_msgs_per_s": answered_rate,
        "latency_ms_p50": percentile(lat, 0.50),
        "latency_ms_p99": percentile(lat, 0.99),
        "bare_faststream_msgs_per_s": bare,
        "ratio_to_bare": answered_rate / bare,
        "cpu_ms_per_message": {k: round(v, 3) for k, v in sorted(run.cpu_ms.items())},
        "cpu_share_of_cores": round(run.cpu_share, 3),
    }


def p99_by_second(run: Run) -> list[float]:
    """p99 of the messages accepted in each second of the run: spikes show as such."""
    first, _, _ = run.span()
    buckets: dict[int, list[float]] = {}
    for m, t in run.accepted.items():
        if m in run.replied:
            buckets.setdefault(int(t - first), []).append((run.replied[m] - t) * 1000)
    return [percentile(sorted(buckets[s]), 0.99) for s in sorted(buckets)]


def report_rate(run: Run, deltas: dict[str, float]) -> dict[str, Any]:
    lat = run.latencies_ms()
    reply_sum = deltas["neuvonta_reply_latency_seconds_sum"]
    return {
        "messages": float(len(run.accepted)),
        "errors": float(run.errors),
        "latency_ms_p50": percentile(lat, 0.50),
        "latency_ms_p99": percentile(lat, 0.99),
        "latency_ms_mean": statistics.fmean(lat) if lat else float("nan"),
        "agent_ms_mean": 1000
        * deltas["neuvonta_triage_latency_seconds_sum"]
        / max(1.0, deltas["neuvonta_triage_latency_seconds_count"]),
        "agent_share": deltas["neuvonta_triage_latency_seconds_sum"] / reply_sum
        if reply_sum
        else float("nan"),
        "p99_ms_by_second": [round(v) for v in p99_by_second(run)],
        "cpu_ms_per_message": {k: round(v, 2) for k, v in sorted(run.cpu_ms.items())},
        "cpu_share_of_cores": round(run.cpu_share, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=100.0, help="msgs/s of the latency run")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    ap.add_argument(
        "--agent",
        choices=["offline", "noop"],
        default="offline",
        help="agent of the latency run (noop: the path's own share)",
    )
    ap.add_argument("--workers", type=int, default=1, help="router worker processes")
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="run on a fresh database of this PostgreSQL server (default: SQLite), "
        "e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--part", choices=["all", "throughput", "latency"], default="all")
    args = ap.parse_args()

    results: dict[str, Any] = {"database": "postgresql" if args.postgres else "sqlite"}
    database, drop = fresh_postgres(args.postgres) if args.postgres else (None, lambda: None)
    atexit.register(drop)
    if args.part in ("all", "throughput"):
        print("bare FastStream JetStream consume-and-publish loop …", file=sys.stderr)
        bare = asyncio.run(baseline.measure(args.messages))
        print(
            f"full path, no-op agent, {args.messages} messages, {args.concurrency} in flight …",
            file=sys.stderr,
        )
        server = Server("noop", args.workers, database)
        try:
            warm_up = drive(server, messages=200, concurrency=args.concurrency, rate=None)
            asyncio.run(warm_up)
            run, _ = asyncio.run(
                drive(server, messages=args.messages, concurrency=args.concurrency, rate=None)
            )
        finally:
            server.stop()
        results["throughput_noop_agent"] = report_closed(run, bare)
    if args.part in ("all", "latency"):
        print(
            f"{args.agent} agent at {args.rate:g} msgs/s for {args.seconds:g} s …", file=sys.stderr
        )
        server = Server(args.agent, args.workers, database)
        try:
            asyncio.run(drive(server, messages=0, concurrency=8, rate=args.rate, seconds=2))
            waited = settle()
            print(f"  (the server settled {waited:.1f} s after the warm-up)", file=sys.stderr)
            run, deltas = asyncio.run(
                drive(server, messages=0, concurrency=8, rate=args.rate, seconds=args.seconds)
            )
        finally:
            server.stop()
        results["latency_offline_agent"] = report_rate(run, deltas)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    if t := results.get("throughput_noop_agent"):
        print(f"""
Full path, no-op agent ({t["messages"]:.0f} messages, {args.concurrency} in flight, \
{args.workers} worker(s), {"PostgreSQL" if args.postgres else "SQLite"})
  accepted            {t["accepted_msgs_per_s"]:8.0f} msgs/s
  answered            {t["answered_msgs_per_s"]:8.0f} msgs/s
  accept → reply      p50 {t["latency_ms_p50"]:.1f} ms   p99 {t["latency_ms_p99"]:.1f} ms
  bare FastStream     {t["bare_faststream_msgs_per_s"]:8.0f} msgs/s (consume + publish, same run)
  ratio               {t["ratio_to_bare"]:8.2f}  (answered / bare)
  CPU a message       {cpu_line(t, digits=2)}
  errors              {t["errors"]:.0f}""")
    if r := results.get("latency_offline_agent"):
        share = 100 * r["agent_share"]
        cpu = cpu_line(r)
        print(f"""
{args.agent.capitalize()} agent at {args.rate:g} msgs/s for {args.seconds:g} s, \
{args.workers} worker(s) ({r["messages"]:.0f} messages)
  accept → reply      p50 {r["latency_ms_p50"]:.1f} ms   p99 {r["latency_ms_p99"]:.1f} ms
  agent per message   {r["agent_ms_mean"]:.1f} ms mean ({share:.0f} % of the time to reply)
  p99 by second       {" ".join(str(v) for v in r["p99_ms_by_second"])} ms
  CPU a message       {cpu}
  errors              {r["errors"]:.0f}""")


def cpu_line(report: dict[str, Any], digits: int = 1) -> str:
    """CPU milliseconds a message by process role, and how busy the cores were."""
    least = 0.5 * 10**-digits
    by_role = ", ".join(
        f"{k} {v:.{digits}f}" for k, v in report["cpu_ms_per_message"].items() if v >= least
    )
    return f"{by_role} ms ({100 * report['cpu_share_of_cores']:.0f} % of {CORES} cores)"


if __name__ == "__main__":
    main()
