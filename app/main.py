"""The FastAPI application: routers, problem+json errors and the lifespan that prepares the
database, the default rule set and the compiled rule-set cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from app import __version__
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.limits import BodySizeLimit
from app.questionnaire import Questionnaire, build_questionnaire
from app.rulesets.cache import RuleSetCache, refresh_forever
from app.rulesets.router import router as rule_sets_router
from app.rulesets.service import SYSTEM_ACTOR, RuleSetService
from app.screenings.router import router as screenings_router
from app.screenings.service import ScreeningService
from app.settings import Settings, get_settings

logger = logging.getLogger("carelevel")

DESCRIPTION = """
carelevel screens a person asking for help with substance use, mental health or an eating
disorder and recommends a level of care, says whether an intensive outpatient program (IOP)
fits, names the barriers to attending and how to lift them, and explains every rule that led
there. **Clinical decision support, not a diagnosis.**

Quick start: `POST /v1/screenings/evaluate` with the example body returns a determination
without storing anything; `POST /v1/screenings` stores it with the exact rule-set version that
decided it. `GET /v1/questionnaire` lists the questions to ask.
"""

meta_router = APIRouter(tags=["questionnaire"])


@meta_router.get(
    "/v1/questionnaire",
    response_model=Questionnaire,
    summary="The questions to ask",
    description="Every question an intake app renders, with its type, allowed values, help text "
    "and whether it is required; derived from the model the API validates answers with.",
)
async def questionnaire() -> Questionnaire:
    return QUESTIONNAIRE


QUESTIONNAIRE = build_questionnaire()


@meta_router.get("/healthz", tags=["operations"], summary="Liveness", include_in_schema=True)
async def healthz() -> Response:
    return Response('{"status":"ok"}', media_type="application/json")


async def prepare_database(app: FastAPI, settings: Settings) -> None:
    """Apply migrations on the embedded default, check them on Postgres, seed the default set.

    Several worker processes start at once: on SQLite a file lock serialises migration and
    seeding; on Postgres an advisory lock serialises seeding.
    """
    from app.migrate import check_schema_is_current, startup_lock, upgrade_to_head

    async with startup_lock(settings, app.state.engine):
        if settings.is_sqlite:
            await upgrade_to_head(app.state.engine)
        else:
            await check_schema_is_current(app.state.engine)
        async with app.state.sessions() as session, session.begin():
            await RuleSetService(session, app.state.rule_set_cache, SYSTEM_ACTOR).ensure_default()
    async with app.state.sessions() as session:
        await app.state.rule_set_cache.refresh(session)


PURGE_INTERVAL_SECONDS = 600.0


async def purge_keys_forever(service: ScreeningService) -> None:
    """Drop expired idempotency keys every few minutes until cancelled."""
    while True:
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
        try:
            await service.purge_expired_keys()
        except Exception as error:  # the next round tries again
            logger.warning("idempotency key purge failed: %s", type(error).__name__)


class _TypeOnlyTracebacks(logging.Filter):
    """Server logs name an unexpected exception's type only: a traceback's messages can carry
    submitted or stored answer values, which must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()
    for name in ("uvicorn.error", "carelevel"):
        if not any(isinstance(f, _TypeOnlyTracebacks) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(_TypeOnlyTracebacks())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        app.state.sessions = create_sessionmaker(app.state.engine)
        app.state.screening_service = ScreeningService(
            app.state.sessions,
            app.state.rule_set_cache,
            timedelta(hours=settings.idempotency_ttl_hours),
        )
        await prepare_database(app, settings)
        background = [
            asyncio.create_task(
                refresh_forever(
                    app.state.rule_set_cache, app.state.sessions, settings.rule_set_refresh_seconds
                )
            ),
            asyncio.create_task(purge_keys_forever(app.state.screening_service)),
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.engine.dispose()

    app = FastAPI(
        title="carelevel",
        version=__version__,
        summary="Level-of-care screening with explained, reproducible recommendations.",
        description=DESCRIPTION,
        lifespan=lifespan,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.settings = settings
    app.state.rule_set_cache = RuleSetCache()
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger=(("/v1/rule-sets", settings.max_rule_set_body_bytes),),
    )
    app.include_router(screenings_router)
    app.include_router(rule_sets_router)
    app.include_router(meta_router)
    return app
