"""Shared fixtures: a real nats-server per test, real SQLite files and real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from router.embedded import EmbeddedNats

REQUIRE_ALL = os.environ.get("NEUVONTA_TEST_REQUIRE_ALL") == "1"
POSTGRES_URL = os.environ.get(
    "NEUVONTA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def missing(what: str) -> None:
    """Skip on a developer machine without ``what``; fail in CI, where it must be there."""
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in CI (NEUVONTA_TEST_REQUIRE_ALL=1)")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


async def _postgres_database() -> AsyncIterator[str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as e:
        missing(f"PostgreSQL at {base.host}:{base.port} ({e})")
        raise AssertionError("unreachable") from e
    name = f"neuvonta_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async for url in _postgres_database():
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test using this runs against a real SQLite file and a real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'neuvonta.db'}"
        return
    async for url in _postgres_database():
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A real SQLite file only, for tests that need not run on PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'neuvonta.db'}"
