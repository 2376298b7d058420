"""Prometheus metrics: ``GET /metrics`` in the text exposition format.

Labels carry route templates, statuses, levels of care and rule-set keys, never ids, paths or
answers. With several worker processes (``carelevel serve --workers N``) the workers write
their samples to ``PROMETHEUS_MULTIPROC_DIR`` and any worker's ``/metrics`` answers for all of
them (prometheus_client's multiprocess mode, which ``carelevel serve`` sets up).

Access follows ``CARELEVEL_METRICS``: ``scope`` (the default) needs a client of the operator
tenant holding ``metrics:read``, since the counts cover every tenant; ``public`` needs no
credential (for a port only the monitoring network reaches); ``off`` removes the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.errors import Forbidden, secured
from app.kernel.settings import Settings
from app.rulesets.cache import RuleSetCache
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

logger = logging.getLogger("carelevel")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"  # requests no route answers: one label, whatever their paths
SAMPLE_INTERVAL_SECONDS = 5.0

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EVALUATION_BUCKETS = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3)


def multiprocess_mode() -> bool:
    """Whether the samples are shared with other worker processes through files."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


_SERIES_KEPT = 4096  # (method, route template, status): a few hundred in practice


class Metrics:
    """The service's instruments. One set per application (tests build many in a process);
    in multiprocess mode they are not registered anywhere: the scrape collects every worker's
    files instead."""

    def __init__(self) -> None:
        self.shared = multiprocess_mode()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.shared else self.registry
        self.http_requests = Counter(
            "carelevel_http_requests",
            "Requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "carelevel_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.screenings = Counter(
            "carelevel_screenings",
            "Screenings stored, by recommended level of care and urgency.",
            ["level", "urgency"],
            registry=registry,
        )
        self.evaluation = Histogram(
            "carelevel_rule_set_evaluation_seconds",
            "Time the engine takes to evaluate one set of answers under a compiled rule set.",
            buckets=_EVALUATION_BUCKETS,
            registry=registry,
        )
        self.active_version = Gauge(
            "carelevel_active_rule_set_version",
            "The active version of each rule set, by owner and key.",
            ["owner", "key"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.pool_connections = Gauge(
            "carelevel_db_pool_connections",
            "Database connections of the pools, in use by a request or idle in the pool.",
            ["state"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_size = Gauge(
            "carelevel_db_pool_size",
            "Connections the pools may open (CARELEVEL_DB_POOL_SIZE per process).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.replays = Counter(
            "carelevel_idempotent_replays",
            "Requests answered with the stored result of an earlier one (same Idempotency-Key).",
            registry=registry,
        )
        self.rate_limited = Counter(
            "carelevel_rate_limited_requests",
            "Requests refused with 429 because the client's rate limit was spent.",
            registry=registry,
        )
        self._request_series: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}

    # --- recording ------------------------------------------------------------------------

    def request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        series = self._request_series.get((method, route, status))
        if series is None:  # labels() checks and locks on every call: its children are kept
            template = route or UNMATCHED_ROUTE
            series = (
                self.http_requests.labels(method, template, str(status)),
                self.http_duration.labels(method, template),
            )
            if len(self._request_series) < _SERIES_KEPT:
                self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)
        if status == 429:
            self.rate_limited.inc()

    def screening_stored(self, level: str | None, urgency: str) -> None:
        self.screenings.labels(level or "none", urgency).inc()

    def evaluated(self, seconds: float) -> None:
        self.evaluation.observe(seconds)

    def replayed(self) -> None:
        self.replays.inc()

    def sample(self, cache: RuleSetCache, engine: AsyncEngine | None) -> None:
        """Set the gauges from this process's rule-set cache and database pool."""
        for (owner, key), ref in cache.active_versions().items():
            self.active_version.labels(owner, key).set(ref.version)
        pool: Any = engine.pool if engine is not None else None
        if pool is not None and hasattr(pool, "checkedout"):
            self.pool_connections.labels("in_use").set(pool.checkedout())
            self.pool_connections.labels("idle").set(pool.checkedin())
            self.pool_size.set(pool.size())

    # --- exposing ---------------------------------------------------------------------------

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition and its content type, in the format ``accept`` asks for (the
        Prometheus text format 0.0.4 unless a scraper asks for OpenMetrics)."""
        encode, content_type = choose_encoder(accept)
        if not self.shared:
            return encode(self.registry), content_type
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return encode(registry), content_type

    def process_ended(self) -> None:
        """Drop this worker's live gauges from the shared files (its counters stay)."""
        if self.shared:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def sample_forever(app: FastAPI) -> None:
    """Refresh the gauges regularly, so that every worker's share is current at a scrape."""
    metrics: Metrics = app.state.metrics
    while True:
        with contextlib.suppress(Exception):  # a failed sample only delays the next one
            metrics.sample(app.state.rule_set_cache, app.state.engine)
        await asyncio.sleep(SAMPLE_INTERVAL_SECONDS)


def _exposition(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.sample(request.app.state.rule_set_cache, request.app.state.engine)
    body, content_type = metrics.render(request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})


_SUMMARY = "Prometheus metrics"
_DESCRIPTION = (
    "Counters, gauges and histograms in the Prometheus text format: requests by route template "
    "and status with their latency, screenings by recommended level and urgency, rule-set "
    "evaluation time, the active version of each rule set, database pool use, idempotent "
    "replays and rate-limited requests. Aggregated over the worker processes of this instance."
)
_EXAMPLE = {
    "text/plain": {
        "example": "# HELP carelevel_screenings_total Screenings stored, by recommended level of "
        "care and urgency.\n# TYPE carelevel_screenings_total counter\n"
        'carelevel_screenings_total{level="intensive_outpatient",urgency="routine"} 42.0\n'
    }
}


def metrics_router(settings: Settings) -> APIRouter | None:
    """The /metrics route as ``CARELEVEL_METRICS`` says (None when it is off)."""
    if settings.metrics == "off":
        return None
    if settings.metrics == "public":
        public = APIRouter(tags=["operations"])

        @public.get(
            "/metrics",
            summary=_SUMMARY,
            description=_DESCRIPTION + " Public (CARELEVEL_METRICS=public).",
            response_class=Response,
            responses={
                200: {
                    "description": "The metrics, in the format the scraper asked for.",
                    "content": _EXAMPLE,
                }
            },
        )
        async def public_metrics(request: Request) -> Response:
            return _exposition(request)

        return public

    guarded = APIRouter(tags=["operations"], route_class=GuardedRoute)
    operator = settings.operator_tenant

    @guarded.get(
        "/metrics",
        operation_id="getMetrics",
        summary=_SUMMARY,
        description=_DESCRIPTION + " Needs a client of the operator tenant: the counts cover "
        "every tenant.",
        response_class=Response,
        responses={
            200: {
                "description": "The metrics, in the format the scraper asked for.",
                "content": _EXAMPLE,
            },
            **secured(),
        },
    )
    async def scraped_metrics(
        request: Request, caller: Annotated[Caller, access(Action.METRICS_READ)]
    ) -> Response:
        if caller.tenant != operator:
            raise Forbidden(
                "Metrics cover every tenant: only the operator tenant's clients read them."
            )
        return _exposition(request)

    return guarded
