"""``neuvonta db`` on a real database, SQLite and PostgreSQL (through DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app
from router.db import head_revision


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "NEUVONTA_DATABASE_URL", "NEUVONTA_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)


def test_db_current_and_upgrade_report_the_schema_revision(
    tmp_path: Path, database_url: str
) -> None:
    env = {"DATABASE_URL": database_url}
    before = CliRunner().invoke(app, ["db", "current", "--data-dir", str(tmp_path)], env=env)
    assert before.exit_code == 0, before.output
    assert "none" in before.output

    done = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    assert f"schema at revision {head_revision()} (newest)" in done.output

    after = CliRunner().invoke(app, ["db", "current", "--data-dir", str(tmp_path)], env=env)
    assert after.output.strip() == head_revision()


def test_an_unreachable_database_is_a_clear_error() -> None:
    env = {"DATABASE_URL": "postgresql://nobody:secret-pw@127.0.0.1:1/none"}
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 1
    assert "cannot use the database" in result.output
    assert "secret-pw" not in result.output
