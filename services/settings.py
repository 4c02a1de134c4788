"""One settings object per process, read from `CONVERGENCE_*` variables (and `.env`) when built."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.plan_files import DEFAULT_PLANS_DIR

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVERGENCE_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".convergence")
    plans_dir: Path = Field(default=DEFAULT_PLANS_DIR, description="the plans and scorecards, re-read while the "
                            "services run (default: the example plans installed with Convergence)")
    tokens_file: Path | None = None
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    embedded_kafka_port: int = 9092
    topic_prefix: str = "convergence."
    partitions: int = 4
    replication_factor: int = 1
    fetch_max_wait_ms: int = 100
    broker_timeout_ms: int = Field(default=5_000, description="how long a request waits for the broker, then 503")
    # The embedded Tansu answers aiokafka's InitProducerId (v0) with an error: set False for it.
    kafka_idempotent_producer: bool = Field(default=True, description="use idempotent Kafka producers "
                                            "(never on the embedded broker's default address)")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    processor_web_port: int = 6066
    processor_health_url: str | None = Field(default=None, description="the processors' /healthz, comma-separated, "
                                             "checked by the API's (`up` sets it)")
    processor_workers: int = Field(default=1, ge=1, description="processor processes `up` runs, one consumer group; "
                                   "worker i serves /healthz on CONVERGENCE_PROCESSOR_WEB_PORT + i")
    currency: str = "USD"
    provider_id: str = "provider"
    measures_debounce_ms: int = 50
    close_catch_up_timeout_s: float = 60.0
    close_grace_hours: float | None = Field(default=None, description="close each period this long after it ends")
    approvers: int = Field(default=1, ge=1, description="distinct token names that must approve a closed period; "
                           "from 2, the name that closed it may not")
    auth: bool = Field(default=True, description="require bearer tokens on writes and reads of money")
    log_format: Literal["text", "json"] = Field(default="text", description="log lines as text, or as JSON "
                                                "objects for a log pipeline (`services.logs`)")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'convergence.db').resolve()}"

    @property
    def idempotent_producer(self) -> bool:
        """Whether producers are idempotent: as configured, except on the embedded broker, which refuses it."""
        return self.kafka_idempotent_producer and self.kafka_bootstrap is not None

    @property
    def resolved_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.embedded_kafka_port}"

    @property
    def resolved_tokens_file(self) -> Path:
        return self.tokens_file or self.data_dir / "tokens.json"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
