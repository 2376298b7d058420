"""The FastAPI application: routers, problem+json errors and the lifespan that prepares the
database, the default rule set and the compiled rule-set cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from app import __version__
from app.audit.router import router as audit_router
from app.audit.trail import audit_failure
from app.cds_hooks.chart import CHART_SECONDS, ChartReader
from app.cds_hooks.router import calls as cds_calls_router
from app.cds_hooks.router import router as cds_router
from app.cds_hooks.service import CdsHooksService
from app.clients.router import router as clients_router
from app.clients.service import ClientService
from app.fhir.outcome import outcome_response
from app.fhir.router import chart_router as fhir_chart_router
from app.fhir.router import router as fhir_router
from app.fhir.service import FhirService
from app.fhir.smart_app import install_smart_app
from app.fhir.terminology import Vocabulary
from app.kernel.db import create_engine, create_sessionmaker, utcnow
from app.kernel.errors import secured
from app.kernel.settings import Settings, get_settings
from app.operations.docs_pages import install_docs_pages
from app.operations.health import router as health_router
from app.operations.metrics import Metrics, metrics_router, sample_forever
from app.people.router import router as people_router
from app.people.service import PeopleService
from app.process.gc_tuning import settle_after_startup
from app.process.logging_setup import keep_health_information_out_of_logs
from app.programs.router import router as programs_router
from app.programs.service import ProgramService
from app.questionnaire import Questionnaire, build_questionnaire
from app.referrals.router import router as referrals_router
from app.referrals.service import ReferralService
from app.rulesets.cache import RuleSetCache, refresh_forever
from app.rulesets.compiled import COMPILED
from app.rulesets.resolve import RuleSets
from app.rulesets.router import router as rule_sets_router
from app.rulesets.service import RuleSetService
from app.rulesets.work import RULE_SET_WORK
from app.runtime.compression import Compression
from app.runtime.cors import Cors
from app.runtime.deadline import Deadline
from app.runtime.edge import Edge
from app.runtime.fast_lane import FastLane, lanes_of
from app.runtime.openapi import complete_openapi, operation_id
from app.runtime.problems import ProblemHandlers
from app.screenings.overrides import decided_screenings
from app.screenings.repository import recent_screenings_of_key
from app.screenings.router import DIRECT_BINDERS
from app.screenings.router import router as screenings_router
from app.screenings.service import ScreeningService
from app.screenings.view import router as view_router
from app.security.access import Guard, GuardedRoute, access
from app.security.actions import Action
from app.security.authentication import Authenticator
from app.security.caller import Caller
from app.security.jwt import JwtVerifier
from app.security.links import LinkSigner
from app.security.models import TokenUse
from app.security.principal import ALL_SCOPES, SCOPE_DESCRIPTIONS, Principal, Scope
from app.security.rate_limit import (
    FailedAuthentications,
    MemoryCounter,
    RateLimiter,
    RedisCounter,
    WindowCounter,
)

logger = logging.getLogger("carelevel")

DESCRIPTION = """
carelevel screens a person asking for help with substance use, mental health or an eating
disorder and recommends a level of care, says whether an intensive outpatient program (IOP)
fits, names the barriers to attending and how to lift them, and explains every rule that led
there. **Clinical decision support, not a diagnosis.**

Quick start: **Authorize** with an API key (the embedded default prints a local admin key at
its first start; `carelevel clients create` makes others), then `POST /v1/screenings/evaluate`
with the example body returns a determination without storing anything; `POST /v1/screenings`
stores it with the exact rule-set version that decided it. `GET /v1/questionnaire` lists the
questions to ask.

Every operation but the health and readiness probes and the FHIR CapabilityStatement needs
`Authorization: Bearer <API key or access token>` (CDS Hooks: a JWT the EHR signs for each call)
and names the scopes it needs. A client belongs to one tenant and never sees another tenant's
screenings, rule sets or audit events: their ids answer 404, like ids that do not exist.

Scopes:
""" + "".join(f"\n- `{scope.value}`: {SCOPE_DESCRIPTIONS[scope]}" for scope in Scope)

meta_router = APIRouter(tags=["questionnaire"], route_class=GuardedRoute)


@meta_router.get(
    "/v1/questionnaire",
    operation_id="getQuestionnaire",
    response_model=Questionnaire,
    response_model_exclude_none=True,
    summary="The questions to ask",
    description="Every question an intake app renders, with its label, type, answers (labels "
    "and LOINC codes), help text and whether it is required; each instrument with its "
    "instructions, item wording where its licence allows (else a topic per item), codes and "
    "licence. Derived from the model the API validates answers with. `language=es` gives the "
    "publisher's Spanish wording and answer labels of the instruments that have them (PHQ-9, "
    "PHQ-2, GAD-7); other labels stay in English. Any authenticated client may read it.",
    responses=secured(),
)
async def questionnaire(
    caller: Annotated[Caller, access(Action.QUESTIONNAIRE_READ)],
    language: Annotated[
        Literal["en", "es"],
        Query(description="The language of labels and wording (BCP 47): en or es."),
    ] = "en",
) -> Questionnaire:
    return build_questionnaire(language)


async def prepare_database(app: FastAPI, settings: Settings) -> None:
    """Apply migrations on the embedded default, check them on Postgres, seed the default set.

    Several worker processes start at once: on SQLite a file lock serialises migration and
    seeding; on Postgres each seeding transaction serialises itself (pooler-safe).
    """
    from app.kernel.migrate import check_schema_is_current, startup_lock, upgrade_to_head

    async with startup_lock(settings):
        if settings.is_sqlite:
            await upgrade_to_head(app.state.engine)
        else:
            await check_schema_is_current(app.state.engine)
        shipped = await app.state.rule_set_service.ensure_default()
        if shipped.waiting:
            logger.warning(shipped.notice())
        if settings.creates_bootstrap_admin:
            await create_bootstrap_admin(app.state.client_service, settings)
    async with app.state.sessions() as session:
        # Compiles the shared rule sets' active versions only: tenants' are compiled on use.
        await app.state.rule_set_cache.refresh(session)


BOOTSTRAP_NAME = "local admin"


async def create_bootstrap_admin(clients: ClientService, settings: Settings) -> None:
    """With no API client at all, create an admin of the operator tenant holding every scope,
    and print its key: the one time it is shown."""
    first_start = Principal(
        tenant=settings.operator_tenant,
        client_id="carelevel",
        scopes=ALL_SCOPES,
        label="carelevel first start",
    )
    created = await clients.create_first_admin(
        Caller(principal=first_start, action=Action.CLIENT_CREATE), BOOTSTRAP_NAME
    )
    if created is None:
        return
    sys.stderr.write(
        "\n"
        f"  A local admin client was created (tenant '{settings.operator_tenant}', every scope).\n"
        f"  Its API key, shown this once:\n\n      {created.api_key}\n\n"
        "  Use it as 'Authorization: Bearer <key>' (or with Authorize in /docs).\n"
        "  More clients: carelevel clients create --tenant T --name N --scopes ...\n\n"
    )
    sys.stderr.flush()


PURGE_INTERVAL_SECONDS = 600.0


async def purge_forever(service: ScreeningService, counter: WindowCounter) -> None:
    """Drop expired idempotency keys and ended rate-limit windows every few minutes."""
    while True:
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
        try:
            await service.purge_expired_keys()
            await counter.purge()
            await purge_token_uses(service.sessions)
        except Exception as error:  # the next round tries again
            logger.warning("purge failed: %s", type(error).__name__)


async def purge_token_uses(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Forget token ids whose tokens have expired (they can no longer be replayed)."""
    async with sessions() as session, session.begin():
        await session.execute(delete(TokenUse).where(TokenUse.expires_at < utcnow()))


def window_counter(settings: Settings) -> WindowCounter:
    """Where this process counts rate-limit windows: Redis when configured, else memory."""
    window = settings.rate_limit_window_seconds
    if settings.rate_limit_backend == "redis":
        assert settings.redis_url is not None  # checked by the settings
        return RedisCounter(settings.redis_url, window)
    return MemoryCounter(window)


def link_signer(settings: Settings) -> LinkSigner:
    """The signer of the view links CDS Hooks cards carry: the configured secret, or a random
    one for this process only (its links open nowhere else)."""
    configured = settings.signed_link_secret
    secret = configured.get_secret_value().encode() if configured else secrets.token_bytes(32)
    return LinkSigner(secret, settings.signed_link_seconds)


class Carelevel(FastAPI):
    """FastAPI with the request edge (request id, security headers, access log) outside
    everything, error handling included, so that every response carries them; CORS just
    inside it, so that every answer below carries its headers; the request's deadline inside
    that, so that nothing below can hold a request longer; compression of
    large responses inside that; the fast lane of the hot operations between those and the
    middleware stack; and the framework's own refusal of a body declared too large in the
    representation of every other error."""

    problems: ProblemHandlers

    def build_middleware_stack(self) -> ASGIApp:
        stack = self.problems.framework_refusals(super().build_middleware_stack())
        lanes = lanes_of(screenings_router.routes, DIRECT_BINDERS)
        settings: Settings = self.state.settings
        lane = FastLane(stack, self, lanes, settings.max_body_bytes)
        within_deadline = Deadline(
            Compression(lane),
            request_seconds=settings.request_deadline_seconds,
            body_seconds=settings.request_body_timeout_seconds,
            edge_problem=self.problems.edge_problem,
        )
        cors = Cors(
            within_deadline,
            api_origins=settings.cors_origins,
            cds_origins=settings.cds_cors_origins,
            edge_problem=self.problems.edge_problem,
        )
        return Edge(cors, self.state.metrics)


def create_server_app() -> FastAPI:
    """The application as ``carelevel serve`` runs it, in each worker process."""
    return create_app(server_process=True)


def create_app(settings: Settings | None = None, *, server_process: bool = False) -> FastAPI:
    """Build the application for ``settings`` (the environment's by default). A
    ``server_process`` (``carelevel serve``) also settles the garbage collector once start-up
    is done (app/process/gc_tuning.py)."""
    settings = settings or get_settings()
    keep_health_information_out_of_logs()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(settings)
        app.state.sessions = create_sessionmaker(app.state.engine)
        rule_sets = RuleSets(app.state.rule_set_cache, settings.operator_tenant)
        app.state.rule_set_service = RuleSetService(
            app.state.sessions, rule_sets, recent_screenings_of_key, decided_screenings
        )
        app.state.screening_service = ScreeningService(
            app.state.sessions,
            rule_sets,
            timedelta(hours=settings.idempotency_ttl_hours),
            app.state.metrics,
        )
        jwt = JwtVerifier(settings.identity_providers, list(Scope))
        counter = window_counter(settings)
        app.state.guard = Guard(
            Authenticator(app.state.sessions, jwt, settings.credential_cache_seconds),
            RateLimiter(counter, settings.rate_limit_requests, settings.rate_limit_tenant_requests),
            FailedAuthentications(counter, settings.auth_failures_per_address),
        )
        app.state.people_service = PeopleService(app.state.sessions)
        app.state.client_service = ClientService(
            app.state.sessions, app.state.guard.authenticator.forget
        )
        app.state.program_service = ProgramService(app.state.sessions)
        app.state.referral_service = ReferralService(
            app.state.sessions, app.state.screening_service, app.state.program_service
        )
        app.state.fhir = FhirService(
            app.state.sessions,
            rule_sets,
            app.state.screening_service,
            Vocabulary(settings.canonical_base),
            app.state.program_service,
        )
        app.state.cds_verifier = JwtVerifier(settings.cds_clients, list(Scope))
        # The chart is read from an EHR well within the request's deadline.
        chart_seconds = min(CHART_SECONDS, settings.request_deadline_seconds / 3)
        app.state.cds_hooks = CdsHooksService(
            app.state.sessions,
            app.state.fhir,
            ChartReader(seconds=chart_seconds),
            programs=app.state.program_service,
        )
        await prepare_database(app, settings)
        background = [
            asyncio.create_task(
                refresh_forever(
                    app.state.rule_set_cache, app.state.sessions, settings.rule_set_refresh_seconds
                )
            ),
            asyncio.create_task(purge_forever(app.state.screening_service, counter)),
            asyncio.create_task(sample_forever(app)),
        ]
        if server_process:
            settle_after_startup()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.guard.authenticator.aclose()
            await jwt.aclose()
            await app.state.cds_verifier.aclose()
            await app.state.cds_hooks.aclose()
            await counter.aclose()
            await app.state.engine.dispose()
            app.state.metrics.process_ended()

    app = Carelevel(
        docs_url=None,
        redoc_url=None,
        title="carelevel",
        version=__version__,
        summary="Level-of-care screening with explained, reproducible recommendations.",
        description=DESCRIPTION,
        lifespan=lifespan,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        contact={"name": "carelevel maintainers", "url": "https://carelevel.dev"},
        # FastAPI's own OpenTelemetry export stays off whatever the environment configures:
        # carelevel exports its metrics and access lines itself, and spans could carry
        # request values (health information). It also saves a check on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A path with a trailing slash is not found rather than redirected: Starlette would
        # build the redirect's absolute URL from the request's Host header, which the caller
        # chooses (an open redirect through a proxy that passes it on).
        redirect_slashes=False,
        # Refused with 413 as the body is read (rule-set documents and the routes carrying the
        # chart have their own limits).
        max_body_size=settings.max_body_bytes,
        generate_unique_id_function=operation_id,
    )
    app.openapi = lambda: complete_openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.link_signer = link_signer(settings)
    # One compile cache per process (``COMPILED``), bounded as this process is configured.
    COMPILED.resize(int(settings.compiled_rule_sets_memory_mb * 1024 * 1024))
    # One pool of rule-set worker processes per process too, sized as configured.
    RULE_SET_WORK.configure(settings.rule_set_work_processes, settings.rule_set_work_per_tenant)
    app.state.rule_set_cache = RuleSetCache(COMPILED)
    app.state.metrics = Metrics()
    app.problems = ProblemHandlers(audit_failure, (("/fhir/", outcome_response),))
    app.problems.install(app)
    app.include_router(screenings_router)  # no prefix: the fast lane serves its routes' paths
    app.include_router(view_router)
    app.include_router(people_router)
    app.include_router(rule_sets_router, max_body_size=settings.max_rule_set_body_bytes)
    app.include_router(clients_router)
    app.include_router(programs_router)
    app.include_router(referrals_router)
    app.include_router(audit_router)
    app.include_router(fhir_router)
    # Bodies carrying the patient's chart: $populate and the CDS Hooks service calls.
    app.include_router(fhir_chart_router, max_body_size=settings.max_chart_body_bytes)
    app.include_router(cds_router)
    app.include_router(cds_calls_router, max_body_size=settings.max_chart_body_bytes)
    app.include_router(meta_router)
    app.include_router(health_router)
    metrics = metrics_router(settings)
    if metrics is not None:
        app.include_router(metrics)
    install_docs_pages(app)
    install_smart_app(app)
    return app
