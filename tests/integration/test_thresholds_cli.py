"""``neuvonta thresholds`` as an administrator runs it: the real CLI on a real SQLite file,
with and without a reachable NATS."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from typer.testing import CliRunner, Result

from handoff.policy_store import KEY
from handoff.queues import DEFAULT_QUEUES
from handoff.thresholds import ThresholdState
from router.bus import config_bucket
from router.cli import app

QUEUES = ", ".join(q.name for q in DEFAULT_QUEUES)


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "DATABASE_URL",
        "NEUVONTA_DATABASE_URL",
        "NEUVONTA_DATA_DIR",
        "NATS_URL",
        "NEUVONTA_NATS_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app, ["thresholds", *(str(a) for a in args)], env={"COLUMNS": "200", **(env or {})}
    )


def ok(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, result.output
    return result


def kv_state(url: str) -> ThresholdState | None:
    async def read() -> ThresholdState | None:
        nc = await nats.connect(url)
        try:
            kv = await config_bucket(nc.jetstream())
            try:
                entry = await kv.get(KEY)
            except nats.js.errors.KeyNotFoundError:
                return None
            return ThresholdState.from_json(entry.value or b"")
        finally:
            await nc.close()

    return asyncio.run(read())


def test_show_and_set_without_nats_write_the_database_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    shown = ok("show", "--data-dir", data).stdout
    assert "Thresholds version 0, the configured default (never changed)." in shown
    assert "Default threshold: 0.5" in shown
    assert shown.splitlines()[2].split() == ["queue", "threshold", "always", "to", "a", "person"]
    assert shown.splitlines()[3].split() == ["general", "0.5", "(default)", "no"]

    result = ok(
        "set", "--by", "anna", "--queue", "health=0.8", "--queue", "social=1",
        "--always-handoff", "safety", "--note", "pilot week", "--data-dir", data,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "thresholds version 1 by anna: health: default → 0.8; social: default → 1; "
        "safety: always to a person on"
    ]
    assert "no NATS reachable" in result.stderr
    assert "running workers pick it up at their next start" in result.stderr

    state = json.loads(ok("show", "--json", "--data-dir", data).stdout)
    assert state["version"] == 1
    assert state["queues"] == {"health": 0.8, "social": 1.0}
    assert state["always_handoff"] == ["safety"]
    assert state["changed_by"] == "anna"
    text = ok("show", "--data-dir", data).stdout
    assert "Thresholds version 1, changed by anna at " in text
    assert any(line.split() == ["health", "0.8", "no"] for line in text.splitlines())
    assert any(line.split() == ["safety", "0.5", "(default)", "yes"] for line in text.splitlines())

    # Only what is named changes; the same values again make no new version.
    ok("set", "--by", "boss", "--clear-queue", "social", "--no-always-handoff", "safety",
       "--default", "0.6", "--data-dir", data)  # fmt: skip
    state = json.loads(ok("show", "--json", "--data-dir", data).stdout)
    assert (state["version"], state["default"]) == (2, 0.6)
    assert (state["queues"], state["always_handoff"]) == ({"health": 0.8}, [])
    again = ok("set", "--by", "boss", "--default", "0.6", "--data-dir", data)
    assert again.stdout.strip() == "nothing changed: the thresholds are so already (version 2)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--queue", "helth=0.8"), f"unknown queue 'helth'; the queues are: {QUEUES}"),
        (("--always-handoff", "x"), "unknown queue 'x'"),
        (("--queue", "health=1.5"), "health: a threshold is a number from 0 to 1"),
        (("--default", "-1"), "default: a threshold is a number from 0 to 1"),
        (("--queue", "health"), "--queue takes QUEUE=THRESHOLD"),
        (("--queue", "health=lots"), "the threshold is a number from 0 to 1"),
        ((), "nothing to change"),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run("set", "--by", "anna", *args, "--data-dir", tmp_path / "var")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_set_puts_the_change_into_nats_kv_from_nats_url_or_a_running_serve(
    tmp_path: Path, nats_url: str
) -> None:
    data = tmp_path / "var"
    result = ok("set", "--by", "anna", "--default", "0.7", "--data-dir", data,
                env={"NATS_URL": nats_url})  # fmt: skip
    assert result.stdout.splitlines()[-1] == "running workers use it now"
    kv = kv_state(nats_url)
    assert kv is not None and (kv.version, kv.default, kv.changed_by) == (1, 0.7, "anna")

    # No NATS_URL: the NATS of the serve that runs on this data folder (its serve.json).
    (data / "serve.json").write_text(json.dumps({"url": "http://x", "nats_url": nats_url}))
    result = ok("set", "--by", "boss", "--queue", "housing=0.9", "--data-dir", data)
    assert result.stdout.splitlines()[-1] == "running workers use it now"
    kv = kv_state(nats_url)
    assert kv is not None and (kv.version, kv.queues) == (2, {"housing": 0.9})


def test_set_with_a_serve_json_left_by_a_crashed_serve_writes_the_database_only(
    tmp_path: Path,
) -> None:
    """The serve.json names a NATS that is gone: the command gives up on it (before, it
    tried to connect for ever) and the change waits in the database."""
    data = tmp_path / "var"
    data.mkdir(parents=True)
    (data / "serve.json").write_text(
        json.dumps({"url": "http://x", "nats_url": "nats://127.0.0.1:9"})
    )
    result = ok("set", "--by", "anna", "--default", "0.7", "--data-dir", data)
    assert "no NATS reachable" in result.stderr
    assert json.loads(ok("show", "--json", "--data-dir", data).stdout)["default"] == 0.7
