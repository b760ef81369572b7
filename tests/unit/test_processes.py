"""Worker child processes: pure helpers."""

from router.processes import omp_threads


def test_worker_processes_share_the_cores_between_their_engine_threads() -> None:
    assert omp_threads(1, cpus=2) == 2
    assert omp_threads(2, cpus=2) == 1
    assert omp_threads(4, cpus=2) == 1
    assert omp_threads(2, cpus=8) == 4
