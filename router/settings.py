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

    agent: Literal["offline", "noop", "llm"] = "offline"
    # How the offline agent embeds questions: the model's weights exactly, or int8 (faster).
    query_encoder: Literal["exact", "int8"] = "exact"
    # Threads the exact question encoder may use (serve gives its workers their share of
    # the cores); int8 always uses one.
    query_threads: Annotated[int, Field(ge=1, le=64)] = 1
    agent_timeout: Annotated[float, Field(gt=0)] = 10.0
    # Knowledge base files loaded on first start when the knowledge base is empty.
    kb_seed: list[Path] = Field(
        default_factory=lambda: [DEMO_KB / "ptv-general-descriptions.docs.jsonl"]
    )
    default_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    # The municipality's queues, hours and response targets (TOML; handoff.queue_config).
    queues_file: Path | None = None
    case_prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,6}$")] = "NV"

    # A router worker alone (``neuvonta worker``) serves /livez, /healthz and /metrics here.
    worker_http_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    max_message_chars: Annotated[int, Field(ge=1, le=100_000)] = 4000
    # Router workers ``serve`` runs as child processes (0: in the web process).
    worker_processes: Annotated[int, Field(ge=0, le=64)] = 1
    router_batch: Annotated[int, Field(ge=1, le=1024)] = 128
    # Batches a worker has in hand at once (the next taken in while the last commits).
    router_batches_in_flight: Annotated[int, Field(ge=1, le=16)] = 2
    ack_wait: Annotated[float, Field(gt=0)] = 30.0

    # The admin account the first start creates when there are no console accounts at all
    # (the demo login); its password: this, or one generated into the data folder.
    console_user: str = "demo"
    console_password: SecretStr | None = None
    # A console session ends after this long without requests, and this long after sign-in.
    session_idle_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8.0
    session_max_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24.0

    public_url: str | None = None

    # ---- privacy: conversations older than this (days since the last message) are deleted;
    # anonymous web chats and identified contacts (phone, email, Telegram) apart. 0: keep.
    retention_web_days: Annotated[int, Field(ge=0)] = 90
    retention_contact_days: Annotated[int, Field(ge=0)] = 365

    # ---- abuse: inbound messages per sender and requests per client IP, per minute (0: off).
    rate_limit_sender: Annotated[int, Field(ge=0)] = 20
    rate_limit_ip: Annotated[int, Field(ge=0)] = 120

    # ---- the LLM agent (NEUVONTA_AGENT=llm; agents.llm): any OpenAI-compatible endpoint ----
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # Azure OpenAI: the deployment name and API version (the base URL is the resource's).
    llm_azure_deployment: str | None = None
    llm_azure_api_version: str | None = None
    # Seconds for one model call (all tries stay within NEUVONTA_AGENT_TIMEOUT), and the most
    # tokens it may write.
    llm_timeout: Annotated[float, Field(gt=0)] = 8.0
    llm_max_tokens: Annotated[int, Field(ge=16, le=32_000)] = 700
    # Tries per message on 429/5xx (with jittered backoff), within the agent timeout.
    llm_retries: Annotated[int, Field(ge=0, le=5)] = 2
    # The circuit opens after this many failed messages in a row, and tries again after this
    # many seconds; while open, messages take the fallback.
    llm_breaker_failures: Annotated[int, Field(ge=1, le=100)] = 5
    llm_breaker_reset: Annotated[float, Field(gt=0)] = 30.0
    # While the model is unavailable: the offline agent answers, or people do.
    llm_fallback: Literal["offline", "human"] = "offline"
    # Prices per 1,000 tokens (prompt, completion) for the audit's cost; unset: no cost.
    llm_price_prompt: Annotated[float, Field(ge=0)] | None = None
    llm_price_completion: Annotated[float, Field(ge=0)] | None = None

    # ---- channels: each is on when its credentials are set (channels.gateway) ----
    # Twilio (SMS, and WhatsApp through ``whatsapp:`` numbers).
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    # The WhatsApp sender (``whatsapp:+358…``); unset: the SMS number's WhatsApp form.
    twilio_whatsapp_from: str | None = None
    # The REST API's base URL (a local fake in tests); unset: Twilio's own.
    twilio_api_url: str | None = None
    # Telegram: webhook mode when the public URL and the secret are set, else long polling.
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    # The Bot API's base URL (a local fake in tests); unset: Telegram's own.
    telegram_api_url: str | None = None
    # Email. Inbound: an SMTP server the gateway runs (off when the port is unset) and/or
    # polling an IMAP mailbox; outbound: an SMTP relay.
    email_address: str | None = None
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    imap_host: str | None = None
    imap_port: Annotated[int, Field(ge=1, le=65535)] = 993
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_ssl: bool = True
    imap_poll_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Inbound email bigger than this is refused; attachments are recorded up to the limit.
    email_max_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    # Delivery: tries per reply before it is dead-lettered, and the first retry's delay (s);
    # each later retry waits twice as long.
    delivery_attempts: Annotated[int, Field(ge=1, le=50)] = 6
    delivery_backoff: Annotated[float, Field(gt=0)] = 2.0

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'neuvonta.db'}"

    @property
    def longest_stream_age(self) -> float | None:
        """Seconds a message stream may keep an event: the shortest retention of residents'
        conversations (None: no retention shorter than the streams' own)."""
        days = [d for d in (self.retention_web_days, self.retention_contact_days) if d > 0]
        return min(days) * 86_400.0 if days else None

    @property
    def vector_cache(self) -> Path:
        """The data folder's passage vectors (the workers of one machine share the file)."""
        return self.data_dir / "kb-vectors"


def nats_servers(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` as the list nats-py takes (it refuses the string)."""
    return [u.strip() for u in url.split(",") if u.strip()]
