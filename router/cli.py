"""The ``neuvonta`` command."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from agents.cli import eval_command, kb_app
from handoff.queues_cli import queues_app
from handoff.residents_cli import residents_app, retention_app
from handoff.thresholds_cli import thresholds_app
from handoff.users_cli import users_app
from router.cli_support import DataDir
from router.db_cli import db_app
from router.settings import Settings

app = typer.Typer(
    help="Neuvonta: multi-channel customer service with a grounded AI and human handoff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Host = Annotated[str | None, typer.Option("--host", help="Listen address (NEUVONTA_HTTP_HOST)")]
Port = Annotated[
    int | None, typer.Option("--port", help="HTTP port (NEUVONTA_HTTP_PORT; default 8080; 0: any)")
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Router worker processes (NEUVONTA_WORKER_PROCESSES; default 1; 0: in-process)",
    ),
]
Agent = Annotated[
    str | None, typer.Option("--agent", help="Triage agent: offline (default) or noop (benchmarks)")
]


def _settings(**overrides: Any) -> Settings:
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings()
    if given:
        settings = Settings.model_validate({**settings.model_dump(), **given})
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Connection chatter from the libraries is not news at INFO.
    noisy_loggers = ("faststream", "nats", "uvicorn.error", "sse_starlette", "httpx", "httpx2")
    # alembic says "Context impl …" for every migration check of every process.
    for noisy in (*noisy_loggers, "twilio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, settings_level(settings)))
    return settings


def settings_level(settings: Settings) -> int:
    return logging.getLevelName(settings.log_level)  # type: ignore[no-any-return]


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    agent: Agent = None,
    workers: Workers = None,
) -> None:
    """Everything on one machine: web chat, console, router workers and (unless NATS_URL is
    set) an embedded NATS server; SQLite in the data folder unless DATABASE_URL is set."""
    from router.serve import run_blocking

    run_blocking(
        _settings(
            data_dir=data_dir,
            http_host=host,
            http_port=port,
            agent=agent,
            worker_processes=workers,
        )
    )


@app.command()
def gateway(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """The resident side alone (needs NATS_URL): web chat, provider webhooks, inbound email
    and Telegram polling, reply delivery. Run as many as the traffic needs."""
    from router.serve import Parts, run_blocking

    settings = _settings(data_dir=data_dir, http_host=host, http_port=port)
    run_blocking(settings, Parts(residents=True, staff=False, worker=False))


@app.command()
def console(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """The staff side alone (needs NATS_URL): agent console, admin pages and their API."""
    from router.serve import Parts, run_blocking

    settings = _settings(data_dir=data_dir, http_host=host, http_port=port)
    run_blocking(settings, Parts(residents=False, staff=True, worker=False))


@app.command()
def worker(data_dir: DataDir = None, agent: Agent = None) -> None:
    """A router worker alone (needs NATS_URL); run as many as the load needs."""
    from router.serve import Parts, run_blocking

    run_blocking(_settings(data_dir=data_dir, agent=agent), Parts(False, False, True))


app.command("eval")(eval_command)
app.add_typer(kb_app, name="kb")
app.add_typer(users_app, name="users")
app.add_typer(thresholds_app, name="thresholds")
app.add_typer(queues_app, name="queues")
app.add_typer(residents_app, name="residents")
app.add_typer(retention_app, name="retention")
app.add_typer(db_app, name="db")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
