"""Service settings, read from CARELEVEL_* environment variables (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./carelevel.db"


class Settings(BaseSettings):
    """Every setting has a safe default for a developer machine."""

    model_config = SettingsConfigDict(
        env_prefix="CARELEVEL_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=EMBEDDED_DATABASE_URL,
        description="SQLAlchemy async URL: postgresql+asyncpg://… in production; a local SQLite "
        "file by default so the service runs with no server.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=2,
        le=200,
        description="Connections per process (at least 2: start-up holds one for its lock).",
    )
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    rule_set_refresh_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often each process checks which rule-set versions are active; an "
        "activation reaches every process within this interval (plus one query).",
    )
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    simulation_sample_size: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=10 * 1024 * 1024,
        description="Largest request body accepted (413 beyond it), except rule-set documents.",
    )
    max_rule_set_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=20 * 1024 * 1024,
        description="Largest rule-set document accepted on /v1/rule-sets (a full rule set with "
        "its test cases is about 100 KiB).",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` and pass them in)."""
    return Settings()
