"""``neuvonta users`` as an administrator runs it: the real CLI on a real database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from handoff.auth import verify_password
from handoff.staff import StaffStore
from router.cli import app
from router.db import create_engine, create_schema

T = TypeVar("T")
QUEUES = "general, housing, building, early-education, social, health, education, business"


@pytest.fixture(autouse=True)
def user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("DATABASE_URL", "NEUVONTA_DATABASE_URL", "NEUVONTA_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def run(
    *args: str | Path, password: str | None = None, env: dict[str, str] | None = None
) -> Result:
    return CliRunner().invoke(
        app,
        [str(a) for a in args],
        input=None if password is None else password + "\n",
        env={"COLUMNS": "200", **(env or {})},
    )


def ok(*args: str | Path, password: str | None = None) -> Result:
    result = run(*args, password=password)
    assert result.exit_code == 0, result.output
    return result


def on_store(url: str, work: Callable[[StaffStore], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(url)
        try:
            await create_schema(engine)
            return await work(StaffStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_users_are_added_listed_and_disabled(tmp_path: Path) -> None:
    data = tmp_path / "var"
    db = f"sqlite:///{data / 'neuvonta.db'}"
    add = ("users", "add", "--password-stdin", "--data-dir", data)
    result = ok(*add, "Anna", "--role", "agent", "--queue", "housing", "--queue", "social",
                password="anna salasana 1")  # fmt: skip
    assert result.stdout.strip() == "added anna (agent; housing, social)"
    ok(*add, "boss", "--role", "admin", password="boss-password-1")

    listed = ok("users", "list", "--data-dir", data).stdout.splitlines()
    assert listed[0].split() == ["username", "role", "queues", "disabled", "last", "login"]
    assert listed[1].split() == ["anna", "agent", "housing,", "social", "no", "never"]
    assert listed[2].split() == ["boss", "admin", "all", "no", "never"]

    # The password is kept as an argon2id hash only (with its spaces: only the line break goes).
    found = on_store(db, lambda s: s.credentials("anna"))
    assert found is not None
    user, password_hash = found
    assert user.queues == ("housing", "social")
    assert password_hash.startswith("$argon2id$") and "salasana" not in password_hash
    assert verify_password(password_hash, "anna salasana 1")

    # Disabling ends the sessions the account has.
    async def sign_in(store: StaffStore) -> None:
        await store.start_session(user.id, "t" * 64, "c" * 64)

    on_store(db, sign_in)
    result = ok("users", "disable", "ANNA", "--data-dir", data)
    assert result.stdout.strip() == "disabled anna; ended 1 session"
    assert on_store(db, lambda s: s.session("t" * 64)) is None
    listed = ok("users", "list", "--data-dir", data).stdout.splitlines()
    disabled, day, minute = listed[1].split()[-3:]
    assert disabled == "yes"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", f"{day} {minute}")  # the sign-in


def test_bad_input_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "var"
    add = ("users", "add", "--password-stdin", "--data-dir", data)

    def refused(*args: str | Path, password: str = "long-enough-1") -> str:
        result = run(*args, password=password)
        assert result.exit_code == 2, result.output
        return " ".join(result.stderr.split())

    message = refused(*add, "anna", "--role", "agent", "--queue", "housing", password="lyhyt")
    assert "error: the password must be at least 10 characters long" in message
    message = refused(*add, "anna", "--role", "agent", "--queue", "parking")
    assert f"error: unknown queue parking; the queues are: {QUEUES}" in message
    message = refused(*add, "anna", "--role", "agent")
    assert "an agent needs at least one --queue" in message
    assert "username" in refused(*add, "anna virtanen", "--role", "admin")
    assert run(*add, "anna", "--role", "boss").exit_code == 2  # not a role
    result = run("users", "add", "anna", "--role", "admin", "--data-dir", data, password="x" * 12)
    assert result.exit_code == 2
    assert "--password-stdin" in result.stderr

    ok(*add, "anna", "--role", "admin", password="long-enough-1")
    assert "the user anna exists already" in refused(*add, "anna", "--role", "admin")
    result = run("users", "disable", "nobody", "--data-dir", data)
    assert result.exit_code == 2
    assert "no such user: nobody" in result.stderr
    # Nothing refused reached the database.
    assert [u.username for u in on_store(f"sqlite:///{data / 'neuvonta.db'}", StaffStore.all)] == [
        "anna"
    ]


def test_users_work_on_the_database_of_database_url(tmp_path: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    result = run(
        "users", "add", "anna", "--role", "agent", "--queue", "housing", "--password-stdin",
        password="anna-password-1", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "anna" in run("users", "list", env=env).stdout
    assert not (tmp_path / "var").exists()  # no SQLite file made on the side
    assert [u.username for u in on_store(database_url, StaffStore.all)] == ["anna"]
