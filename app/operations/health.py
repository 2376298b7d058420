"""Liveness and readiness, for load balancers and orchestrators (public: probes carry no
credentials, and the answers say nothing of anyone).

``/healthz``: the process answers; it checks nothing else, so a database outage never gets a
healthy process restarted. ``/readyz``: the process can serve screenings now: the database
answers, its schema is at the code's migration head, and the active default rule set is
compiled in this process. Otherwise 503 names each failing check, and the load balancer sends
traffic elsewhere until it passes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from app.engine import DEFAULT_RULE_SET_KEY
from app.kernel.errors import PROBLEM_JSON, problem_response
from app.kernel.migrate import current_revision, head_revision, schema_state
from app.kernel.responses import json_response
from app.kernel.tenancy import SHARED
from app.rulesets.cache import RuleSetCache

router = APIRouter(tags=["operations"])

# A probe must answer quickly even when the database does not (asyncpg waits up to a minute
# for a connection by default).
CHECK_TIMEOUT_SECONDS = 2.0


class Check(BaseModel):
    status: Literal["ok", "failed"]
    detail: str = Field(description="What was found, or why the check failed.")
    duration_ms: float | None = None


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, Check] = Field(
        description="`database`, `migrations`, `rule_set`: each `ok` or `failed` with why.",
        examples=[
            {
                "database": {"status": "ok", "detail": "answered", "duration_ms": 1.4},
                "migrations": {"status": "ok", "detail": "at head c204c6fdd9c1"},
                "rule_set": {"status": "ok", "detail": "shared/iop-level-of-care version 1"},
            }
        ],
    )


@dataclass(frozen=True, slots=True)
class _Found:
    database: Check
    migrations: Check


async def _database_and_schema(engine: AsyncEngine) -> _Found:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with engine.connect() as connection:
                current = await connection.run_sync(current_revision)
    except TimeoutError:
        failed = Check(status="failed", detail=f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
        return _Found(failed, Check(status="failed", detail="unknown: the database is down"))
    except Exception as error:  # any driver error means "not reachable"; logged by type only
        failed = Check(status="failed", detail=f"unreachable ({type(error).__name__})")
        return _Found(failed, Check(status="failed", detail="unknown: the database is down"))
    database = Check(
        status="ok", detail="answered", duration_ms=round((time.perf_counter() - started) * 1000, 1)
    )
    head, state = head_revision(), schema_state(current)
    if state == "at_head":
        migrations = Check(status="ok", detail=f"at head {head}")
    elif state == "ahead":
        migrations = Check(
            status="ok", detail=f"at {current}, ahead of this code's head {head} (a newer release)"
        )
    else:
        migrations = Check(
            status="failed",
            detail=f"at {current or 'no revision'}, the code needs {head}: run carelevel migrate",
        )
    return _Found(database, migrations)


def _rule_set(cache: RuleSetCache) -> Check:
    active = cache.active(SHARED, DEFAULT_RULE_SET_KEY)
    if active is None:  # the cache holds active versions compiled, or not at all
        return Check(status="failed", detail=f"no active version of {DEFAULT_RULE_SET_KEY}")
    return Check(status="ok", detail=f"{SHARED}/{active.key} version {active.version}")


@router.get(
    "/healthz",
    operation_id="checkLiveness",
    summary="Liveness",
    description="The process is up and answering. Checks no dependency, so that an outage of "
    "the database never makes an orchestrator restart healthy processes. Public: no "
    "credentials.",
    responses={
        200: {
            "description": "The process is alive.",
            "content": {"application/json": {"example": {"status": "ok"}}},
        }
    },
)
async def healthz() -> Response:
    return Response('{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    operation_id="checkReadiness",
    response_model=Readiness,
    summary="Readiness",
    description="Whether this process can serve screenings now: the database answers (within "
    "2 s), its schema is at the code's migration head, and the active default rule set is "
    "compiled here. 503 otherwise, naming each failing check, with `Retry-After`. Point the "
    "load balancer's and the orchestrator's readiness probes here. Public: no credentials.",
    responses={
        200: {"description": "Ready: every check passed."},
        503: {
            "description": "Not ready: the failing checks are named in `detail` and `checks`.",
            "content": {
                PROBLEM_JSON: {
                    "example": {
                        "type": "https://carelevel.dev/problems/not-ready",
                        "title": "Not ready to serve",
                        "status": 503,
                        "detail": "Failing: database (unreachable (ConnectionRefusedError)).",
                        "checks": {
                            "database": {
                                "status": "failed",
                                "detail": "unreachable (ConnectionRefusedError)",
                            },
                            "migrations": {
                                "status": "failed",
                                "detail": "unknown: the database is down",
                            },
                            "rule_set": {
                                "status": "ok",
                                "detail": "shared/iop-level-of-care version 1",
                            },
                        },
                    }
                }
            },
        },
    },
)
async def readyz(request: Request) -> Any:
    found = await _database_and_schema(request.app.state.engine)
    checks = {
        "database": found.database,
        "migrations": found.migrations,
        "rule_set": _rule_set(request.app.state.rule_set_cache),
    }
    failing = {name: check for name, check in checks.items() if check.status == "failed"}
    if not failing:
        return json_response(Readiness(checks=checks).model_dump(mode="json", exclude_none=True))
    return problem_response(
        503,
        "not-ready",
        "Not ready to serve",
        "Failing: "
        + ", ".join(f"{name} ({check.detail})" for name, check in failing.items())
        + ".",
        request,
        headers={"Retry-After": "5"},
        extra={"checks": {n: c.model_dump(exclude_none=True) for n, c in checks.items()}},
    )
