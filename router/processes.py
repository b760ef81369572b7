"""Router workers as child processes of ``serve``, restarted when they die.

The gateway's event loop serves HTTP; triage is CPU work. Each in its own process, both
cores of a small machine are used and a slow agent never delays the web pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from router.embedded import die_with_parent
from router.metrics import MULTIPROC_ENV
from router.settings import Settings

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0


def omp_threads(workers: int, cpus: int | None = None) -> int:
    return max(1, (cpus or os.cpu_count() or 1) // max(1, workers))


class WorkerProcesses:
    def __init__(self, settings: Settings, nats_url: str, count: int, *, metrics_dir: Path) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.nats_url = nats_url
        self.count = count
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    def _env(self) -> dict[str, str]:
        s = self.settings
        env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "DATABASE_URL": s.database,
            "NEUVONTA_DATA_DIR": str(s.data_dir.resolve()),
            "NEUVONTA_AGENT": s.agent,
            "NEUVONTA_LOG_LEVEL": s.log_level,
            # The web process shows the workers' metrics from the files they write here.
            MULTIPROC_ENV: str(self.metrics_dir.resolve()),
        }
        # The child must not take the parent's settings for its own processes.
        env.pop("NEUVONTA_WORKER_PROCESSES", None)
        # The embedding engine's OpenMP threads: workers sharing the cores must not each
        # spin one per core (two workers on two cores went from 7.6 s to 0.13 s p99).
        share = str(omp_threads(self.count))
        env.setdefault("OMP_NUM_THREADS", share)
        # And the question encoder's, with the same share.
        env.setdefault("NEUVONTA_QUERY_THREADS", share)
        return env

    def _spawn(self, slot: int) -> None:
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "worker"],
            env=self._env(),
            preexec_fn=die_with_parent,
        )
        log.info("router worker %d started (pid %d)", slot, self.procs[slot].pid)

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self._supervisor = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            for slot, proc in list(self.procs.items()):
                if proc.poll() is None or self._stopping:
                    continue
                # Unacknowledged messages return to the stream; the new worker takes them.
                log.error(
                    "router worker %d (pid %d) exited with %s; restarting",
                    slot,
                    proc.pid,
                    proc.returncode,
                )
                self.restarts += 1
                await asyncio.sleep(RESTART_DELAY)
                if not self._stopping:
                    self._spawn(slot)

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs.values())

    async def stop(self, grace: float = 30.0) -> None:
        """Ask every worker to finish the batch in hand and exit."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for slot, proc in self.procs.items():
            try:
                await asyncio.to_thread(proc.wait, grace)
            except subprocess.TimeoutExpired:
                log.error("router worker %d did not stop in %.0f s; killing it", slot, grace)
                proc.kill()
                await asyncio.to_thread(proc.wait)
