"""The baselines bench/service.py compares carelevel with: bare FastAPI apps, served by the same
uvicorn (uvloop, httptools, one worker, no access log) in the same virtual environment.

- A (``create_a``): an ``async`` endpoint that validates the very request model carelevel
  validates (``ScreeningRequest``: the answers, extra fields refused) and returns a small JSON.
  The framework's ceiling for our payload: no authentication, no engine, no database.
- A+E (``create_a_engine``): A plus the engine: evaluate the answers under the default rule set
  and return the determination as carelevel does (rule set and determination, orjson). The
  ceiling for ``POST /v1/screenings/evaluate`` with the engine as it is: no authentication,
  rate limit, access line, metrics or middleware.
- B (``create_b``): A plus one INSERT of the answers (JSONB) through a raw asyncpg pool of the
  same size as carelevel's, in autocommit: the ceiling for a durable write.
- B+E (``create_b_engine``): B plus the engine: the answers and their determination stored in
  one INSERT, the determination returned (201). The ceiling for ``POST /v1/screenings`` with
  the engine as it is: no authentication, rate limit, idempotency key, audit event, access
  line, metrics or middleware.

    uvicorn --factory --app-dir bench baselines:create_a --no-access-log
    BENCH_DATABASE_DSN=postgresql://postgres@127.0.0.1:5432/carelevel_bench \\
        uvicorn --factory --app-dir bench baselines:create_b --no-access-log
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response, status

from app.engine import default_rule_set, evaluate
from app.screenings.schemas import ScreeningRequest

DSN_ENV = "BENCH_DATABASE_DSN"
POOL_SIZE_ENV = "BENCH_POOL_SIZE"
TABLE = "bench_answers"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} "
    "(id uuid PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), answers jsonb NOT NULL)"
)
INSERT = f"INSERT INTO {TABLE} (id, answers) VALUES ($1, $2::jsonb)"
ENGINE_TABLE = "bench_determinations"
CREATE_ENGINE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {ENGINE_TABLE} (id uuid PRIMARY KEY, "
    "created_at timestamptz NOT NULL DEFAULT now(), answers jsonb NOT NULL, "
    "determination jsonb NOT NULL)"
)
INSERT_ENGINE = (
    f"INSERT INTO {ENGINE_TABLE} (id, answers, determination) VALUES ($1, $2::jsonb, $3::jsonb)"
)


def _health(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}


def create_a() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _health(app)

    @app.post("/evaluate")
    async def evaluate(request: ScreeningRequest) -> dict[str, Any]:
        return {"ok": True, "age_group": request.answers.respondent.age_group}

    return app


def create_a_engine() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _health(app)
    compiled = default_rule_set()
    rule_set = {"owner": "shared", "key": compiled.ref.key, "version": 1,
                "sha256": compiled.ref.sha256}  # fmt: skip

    @app.post("/evaluate")
    async def evaluate_answers(request: ScreeningRequest) -> Response:
        determination = evaluate(compiled, request.answers)
        body = orjson.dumps({"rule_set": rule_set, "determination": determination})
        return Response(body, media_type="application/json")

    return app


def _pooled(create_table: str) -> Any:
    dsn = os.environ[DSN_ENV]
    pool_size = int(os.environ.get(POOL_SIZE_ENV, "10"))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        await pool.execute(create_table)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return lifespan


def create_b() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=_pooled(CREATE_TABLE))
    _health(app)

    @app.post("/screenings", status_code=status.HTTP_201_CREATED)
    async def store(request: ScreeningRequest, http: Request) -> dict[str, Any]:
        screening_id = uuid.uuid4()
        await http.app.state.pool.execute(INSERT, screening_id, request.answers.model_dump_json())
        return {"id": str(screening_id)}

    return app


def create_b_engine() -> FastAPI:
    lifespan = _pooled(CREATE_ENGINE_TABLE)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    _health(app)
    compiled = default_rule_set()

    @app.post("/screenings")
    async def store(request: ScreeningRequest, http: Request) -> Response:
        screening_id = uuid.uuid4()
        determination = orjson.dumps(evaluate(compiled, request.answers))
        await http.app.state.pool.execute(
            INSERT_ENGINE, screening_id, request.answers.model_dump_json(), determination.decode()
        )
        body = b'{"id":"' + str(screening_id).encode() + b'","determination":' + determination
        return Response(body + b"}", status_code=201, media_type="application/json")

    return app
