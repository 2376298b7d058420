"""The baselines bench/service.py compares carelevel with: bare FastAPI apps, served by the same
uvicorn (uvloop, httptools, one worker, no access log) in the same virtual environment.

- A (``create_a``): an ``async`` endpoint that validates the very request model carelevel
  validates (``ScreeningRequest``: the answers, extra fields refused) and returns a small JSON.
  The framework's ceiling for our payload: no authentication, no engine, no database.
- A+E (``create_a_engine``): A plus the engine: evaluate the answers under the default rule set
  and return the determination as carelevel does (rule set and determination, orjson). The
  ceiling for ``POST /v1/screenings/evaluate`` with the engine as it is: no authentication,
  rate limit, access line, metrics or middleware.
- R+E (``create_raw_engine``): no framework at all: a bare ASGI function that validates the
  same model from the body (``model_validate_json``), evaluates and returns the determination
  as carelevel does. The ceiling of the work itself (HTTP, validation, engine, 16 KB of JSON),
  to tell what the framework and carelevel's own duties cost from what the engine costs.
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

from app.engine import default_rule_set, determination_to_json, evaluate
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


def create_raw_engine() -> Any:
    compiled = default_rule_set()
    prefix = orjson.dumps(
        {"owner": "shared", "key": compiled.ref.key, "version": 1, "sha256": compiled.ref.sha256}
    )
    ok = b'{"status":"ok"}'
    json_type = (b"content-type", b"application/json")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["path"] == "/healthz":
            body = ok
        else:
            request = ScreeningRequest.model_validate_json(b"".join(chunks))
            determination = determination_to_json(evaluate(compiled, request.answers))
            body = b'{"rule_set":' + prefix + b',"determination":' + determination + b"}"
        headers = [json_type, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

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
