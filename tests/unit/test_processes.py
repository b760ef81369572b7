"""Worker child processes: pure helpers."""

import os
from pathlib import Path

import pytest

from router.processes import WorkerProcesses, omp_threads
from router.settings import Settings


def test_worker_processes_share_the_cores_between_their_engine_threads() -> None:
    assert omp_threads(1, cpus=2) == 2
    assert omp_threads(2, cpus=2) == 1
    assert omp_threads(4, cpus=2) == 1
    assert omp_threads(2, cpus=8) == 4


def test_each_worker_gets_its_share_of_the_cores_for_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEUVONTA_QUERY_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    settings = Settings(data_dir=tmp_path)
    one = WorkerProcesses(settings, "nats://127.0.0.1:1", 1, metrics_dir=tmp_path)._env()
    two = WorkerProcesses(settings, "nats://127.0.0.1:1", 2, metrics_dir=tmp_path)._env()
    cores = os.cpu_count() or 1
    assert one["NEUVONTA_QUERY_THREADS"] == str(cores)
    assert two["NEUVONTA_QUERY_THREADS"] == str(max(1, cores // 2))
    # A child reads it as its own setting; an admin's explicit choice is kept.
    monkeypatch.setenv("NEUVONTA_QUERY_THREADS", "1")
    env = WorkerProcesses(settings, "nats://127.0.0.1:1", 1, metrics_dir=tmp_path)._env()
    assert env["NEUVONTA_QUERY_THREADS"] == "1"
    monkeypatch.setenv("NEUVONTA_QUERY_THREADS", one["NEUVONTA_QUERY_THREADS"])
    assert Settings().query_threads == cores
