"""Configuration from environment variables (``NEUVONTA_*``; ``NATS_URL``, ``DATABASE_URL``).

Settings are built by the app factories and passed down; nothing reads the environment
at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_KB = Path(__file__).resolve().parent.parent / "agents" / "knowledge" / "demo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEUVONTA_", extra="ignore")

    data_dir: Path = Path("var")
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    # Point at external services; unset means the embedded default (serve only).
    nats_url: str | None = Field(
        None, validation_alias=AliasChoices("NATS_URL", "NEUVONTA_NATS_URL")
    )
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "NEUVONTA_DATABASE_URL")
    )
    jetstream_replicas: Annotated[int, Field(ge=1, le=5)] = 1

    agent: Literal["offline", "noop"] = "offline"
    # How the offline agent embeds questions: the model's weights exactly, or int8 (faster).
    query_encoder: Literal["exact", "int8"] = "exact"
    agent_timeout: Annotated[float, Field(gt=0)] = 10.0
    # Knowledge base files loaded on first start when the knowledge base is empty.
    kb_seed: list[Path] = Field(
        default_factory=lambda: [DEMO_KB / "ptv-general-descriptions.docs.jsonl"]
    )
    default_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    # The municipality's queues, hours and response targets (TOML; handoff.queue_config).
    queues_file: Path | None = None
    case_prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,6}$")] = "NV"

    max_message_chars: Annotated[int, Field(ge=1, le=100_000)] = 4000
    # Router workers ``serve`` runs as child processes (0: in the web process).
    worker_processes: Annotated[int, Field(ge=0, le=64)] = 1
    router_batch: Annotated[int, Field(ge=1, le=1024)] = 128
    ack_wait: Annotated[float, Field(gt=0)] = 30.0

    # The admin account the first start creates when there are no console accounts at all
    # (the demo login); its password: this, or one generated into the data folder.
    console_user: str = "demo"
    console_password: SecretStr | None = None
    # A console session ends after this long without requests, and this long after sign-in.
    session_idle_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8.0
    session_max_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24.0

    public_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'neuvonta.db'}"
