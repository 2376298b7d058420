"""Settings: production refuses to start on placeholders, and the log format follows the mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.kernel.db import database_shown
from app.kernel.settings import Settings

POSTGRES = "postgresql+asyncpg://carelevel:Zq8-long-random-3f1@db.internal:5432/carelevel"
CARELEVEL = Path(sys.executable).parent / "carelevel"


def production(**overrides: Any) -> Settings:
    """Production settings that are accepted, with ``overrides``."""
    accepted = {
        "database_url": POSTGRES,
        "public_url": "https://carelevel.example",
        "redis_url": "redis://:Vb7-long-random-2k9@cache.internal:6379/0",
    }
    return Settings(environment="production", **(accepted | overrides))


def refusal(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        production(**overrides)
    return str(refused.value)


def test_production_starts_with_real_secrets() -> None:
    settings = production(redis_url="redis://:Kd93-long-random-x1@cache.internal:6379/0")
    assert not settings.creates_bootstrap_admin
    # Postgres may authenticate without a password in the URL (client certificates, IAM).
    production(database_url="postgresql+asyncpg://carelevel@db.internal/carelevel?ssl=verify-full")


def test_production_refuses_the_embedded_sqlite_file() -> None:
    message = refusal(database_url="sqlite+aiosqlite:///./carelevel.db")
    assert "CARELEVEL_DATABASE_URL: production needs PostgreSQL" in message


@pytest.mark.parametrize("password", ["PASSWORD", "change-me", "changeme", "postgres", "secret"])
def test_production_refuses_a_placeholder_database_password(password: str) -> None:
    url = f"postgresql+asyncpg://carelevel:{password}@db.internal:5432/carelevel"
    message = refusal(database_url=url)
    assert "CARELEVEL_DATABASE_URL: the password is a placeholder" in message
    assert password not in message.replace("placeholder", "")  # the value is never echoed


def test_production_refuses_a_placeholder_redis_password() -> None:
    message = refusal(redis_url="redis://:change-me@cache.internal:6379/0")
    assert "CARELEVEL_REDIS_URL: the password is a placeholder" in message


def test_production_needs_its_public_address() -> None:
    message = refusal(public_url=None)
    assert "CARELEVEL_PUBLIC_URL: production needs the address clients reach" in message


def test_production_needs_shared_rate_limits_unless_declared_a_single_process() -> None:
    assert "CARELEVEL_REDIS_URL: production needs Redis" in refusal(redis_url=None)
    alone = production(redis_url=None, rate_limit_storage="memory")
    assert alone.rate_limit_backend == "memory"
    assert "2 worker processes would each count" in refusal(
        redis_url=None, rate_limit_storage="memory", workers=2
    )


def test_production_refuses_the_local_admin() -> None:
    assert "CARELEVEL_BOOTSTRAP_ADMIN must be off in production" in refusal(bootstrap_admin=True)


def test_placeholders_are_fine_outside_production() -> None:
    url = "postgresql+asyncpg://carelevel:change-me@localhost:5432/carelevel"
    assert Settings(environment="development", database_url=url).database_url == url


def test_logs_are_json_lines_in_production_and_readable_elsewhere() -> None:
    assert production().json_logs
    assert not Settings(environment="development").json_logs
    assert Settings(environment="development", log_format="json").json_logs
    assert not production(log_format="text").json_logs


def test_serve_names_the_wrong_setting_and_exits_2(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARELEVEL_")}
    env |= {
        "CARELEVEL_ENVIRONMENT": "production",
        "CARELEVEL_DATABASE_URL": "postgresql+asyncpg://carelevel:change-me@db:5432/carelevel",
    }
    done = subprocess.run(
        [str(CARELEVEL), "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "carelevel: the configuration is invalid:" in done.stderr
    assert "CARELEVEL_DATABASE_URL: the password is a placeholder; set the real one" in done.stderr
    assert "change-me" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # The default: a file in the working directory, shown with its whole path.
        ("sqlite+aiosqlite:///./carelevel.db", "sqlite+aiosqlite:////srv/care/carelevel.db"),
        ("sqlite+aiosqlite:///../shared/care.db", "sqlite+aiosqlite:////srv/shared/care.db"),
        ("sqlite+aiosqlite:////var/lib/care.db", "sqlite+aiosqlite:////var/lib/care.db"),
        (POSTGRES, "postgresql+asyncpg://carelevel:***@db.internal:5432/carelevel"),
        # A query may carry credentials too: it is left out.
        (
            "postgresql+asyncpg://carelevel@db.internal/carelevel?password=Zq8-long&ssl=require",
            "postgresql+asyncpg://carelevel@db.internal/carelevel",
        ),
        ("not a url Zq8-long", "(CARELEVEL_DATABASE_URL is not a database URL)"),
    ],
)
def test_the_database_is_shown_without_its_credentials(url: str, shown: str) -> None:
    assert database_shown(url, Path("/srv/care")) == shown
