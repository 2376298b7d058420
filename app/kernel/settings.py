"""Service settings, read from CARELEVEL_* environment variables (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.kernel.issuers import CdsClient, IdentityProvider
from app.kernel.months import MONTHS_AHEAD_MAX
from app.kernel.record_keeping import retention_years
from app.kernel.smart_apps import SmartApp, unique_iss
from app.kernel.tenancy import is_tenant_id

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./carelevel.db"
# The canonical base of carelevel's FHIR artefacts before it could resolve (it names no server):
# still the canonical base without a public URL, and accepted as an alias on input always, so
# QuestionnaireResponses stored with it stay valid.
LEGACY_FHIR_CANONICAL_BASE = "https://carelevel.dev/fhir"


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
    db_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest wait for PostgreSQL to answer a statement or a new connection; "
        "beyond it the request is answered 503 and the connection replaced.",
    )
    request_deadline_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest a request may take, from its arrival to the start of its answer, "
        "whatever it waits for (connections, statements, worker threads); at the deadline it "
        "is stopped and answered 503 with Retry-After.",
    )
    request_body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest a client may take to send a request's body; a slower or stalled "
        "body is answered 408 and its connection closed. At most the request deadline.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="`json`: one JSON object per line (for log shipping); `text`: readable "
        "lines. Default: json in production, text otherwise.",
    )
    metrics: Literal["scope", "public", "off"] = Field(
        default="scope",
        description="GET /metrics (Prometheus): `scope` needs a client of the operator tenant "
        "with the `metrics:read` scope, `public` needs none (only where the port is reachable "
        "from the monitoring network alone), `off` removes it.",
    )
    shutdown_timeout_seconds: int = Field(
        default=30,
        gt=0,
        le=600,
        description="On SIGTERM, how long requests in flight may take to finish before the "
        "process exits.",
    )
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
    compiled_rule_sets_memory_mb: float = Field(
        default=64.0,
        gt=0,
        le=100_000,
        description="Memory each process gives compiled rule-set contents, in MB (least "
        "recently used evicted first; about 1.1 MB for the shipped rule set, estimated as each "
        "is compiled). Tenants' active versions are compiled on first use and again after "
        "eviction; the shared rule sets' active versions are always kept.",
    )
    rule_set_work_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes each server process runs rule-set work in (checking a "
        "new or edited draft, validation, diffs, simulations, exports; started on first use), "
        "off the process that serves requests.",
    )
    rule_set_work_per_tenant: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Rule-set operations (a draft's check, validation, diff, simulation, "
        "export) a tenant may have under way at once in one server process; 429 with "
        "Retry-After beyond.",
    )
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=24 * 30)
    screening_retention_years: int = Field(
        default=10,
        description="Years a tenant's screenings (with their decisions and cards) are kept unless "
        "`carelevel retention set` gives the tenant its own; 1-100. Check the medical-record "
        "retention your jurisdiction requires.",
    )
    audit_retention_years: int = Field(
        default=10,
        description="Years a tenant's audit events are kept unless `carelevel retention set` "
        "gives the tenant its own; at least 6 (HIPAA, 45 CFR 164.316(b)(2)), at most 100.",
    )
    partition_months_ahead: int = Field(
        default=3,
        ge=1,
        le=MONTHS_AHEAD_MAX,
        description="PostgreSQL: how many months after the current one have their partitions "
        "of screenings and audit events created in advance (pg_partman's premake, given to it by "
        "`carelevel partitions ensure` and `carelevel retention expire`).",
    )
    max_page_size: int = Field(default=100, ge=1, le=1000)
    simulation_sample_size: int = Field(default=500, ge=1, le=10_000)
    override_report_min_count: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="The fewest screenings a figure of the override report (and of the "
        "override and agreement figures of a diff or simulation) may rest on; smaller ones are "
        "withheld. At least 5 in production.",
    )
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
    max_chart_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        le=20 * 1024 * 1024,
        description="Largest body of a CDS Hooks service call and of Questionnaire/$populate, "
        "which carry the patient's chart (a hundred Observations with conditions and "
        "medications is a few hundred KiB).",
    )

    # --- security ---------------------------------------------------------------------------
    operator_tenant: str = Field(
        default="default",
        description="The tenant whose clients maintain the shared rule sets (every tenant reads "
        "them). Rows stored before tenancy existed belong to the tenant `default`.",
    )
    bootstrap_admin: bool | None = Field(
        default=None,
        description="On a start with no API clients at all, create a local admin client (every "
        "scope, operator tenant) and print its key once. Default: on for the embedded SQLite "
        "database in development, off otherwise.",
    )
    credential_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a process trusts an API key it has checked; a revocation reaches "
        "every other process within this time (at once in the revoking process).",
    )
    identity_providers: list[IdentityProvider] = Field(
        default_factory=list,
        description="Trusted OAuth2/OIDC issuers whose JWT access tokens are accepted, as JSON.",
    )
    rate_limit_requests: int = Field(
        default=6000, ge=1, le=10_000_000, description="Requests per client per window."
    )
    rate_limit_tenant_requests: int = Field(
        default=30_000,
        ge=1,
        le=100_000_000,
        description="Requests per tenant per window, all its clients together (a tenant cannot "
        "multiply its budget by creating clients).",
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    auth_failures_per_address: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Failed authentications per source address per window; beyond, requests "
        "from that address with credentials not already trusted get 429 until the window ends, "
        "without being checked.",
    )
    rate_limit_storage: Literal["auto", "memory", "redis"] = Field(
        default="auto",
        description="Where request counts live: `redis` (shared by every process and replica) "
        "or `memory` (this process only: one worker, one replica). `auto` is redis when "
        "CARELEVEL_REDIS_URL is set, else memory.",
    )
    redis_url: str | None = Field(default=None, description="redis://host:6379/0")
    public_url: str | None = Field(
        default=None,
        description="The address clients reach the service at (https://carelevel.example): "
        "absolute links in FHIR Bundles and CDS Hooks cards, and the exact audience a CDS "
        "client's JWT must name. Required in production; elsewhere the address of each "
        "request by default.",
    )
    fhir_canonical_base: str | None = Field(
        default=None,
        description="Prefix of the canonical URLs of carelevel's Questionnaires, code systems, "
        "value sets and naming systems (identifiers: keep it stable). Unset: "
        "CARELEVEL_PUBLIC_URL + /fhir/r4, so that each canonical URL is also where the "
        "resource is read; without a public URL, https://carelevel.dev/fhir, which is accepted "
        "as an alias on input whatever this is.",
    )
    cds_clients: list[CdsClient] = Field(
        default_factory=list,
        description="EHRs allowed to call the CDS Hooks services, as JSON: each signs a JWT per "
        "call with a key of its JWKS (docs/ehr-integration.md).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (/v1, /fhir/r4) across origins "
        "(CORS), as JSON; none by default.",
    )
    cds_cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Browser origins allowed to call the CDS Hooks services (/cds-services) "
        "across origins, as JSON. Any by default: CDS Hooks expects CORS for browser-based "
        "CDS clients, and every call carries a JWT of its own, never a cookie.",
    )
    smart_apps: list[SmartApp] = Field(
        default_factory=list,
        description="EHRs that may launch the SMART app at /smart/launch, as JSON: each its "
        "FHIR base (iss), the client_id it registered for the app, the scope asked for and "
        "the origins of its authorization server when not the FHIR server's. The first is the "
        "standalone launch's EHR. A launch from any other iss is refused.",
    )
    signed_link_secret: SecretStr | None = Field(
        default=None,
        description="The key (at least 32 characters) of the HMAC that signs the short-lived "
        "links CDS Hooks cards carry to a screening's readable view. Unset: a random key per "
        "process, so a link opens only in the process that made it; set it when several "
        "processes serve (required in production with CDS clients).",
    )
    signed_link_seconds: int = Field(
        default=900,
        ge=60,
        le=86_400,
        description="How long a signed view link opens after it is made, in seconds.",
    )

    @field_validator("operator_tenant")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        if not is_tenant_id(value):
            raise ValueError("must be a lowercase slug (a-z, 0-9, -), and not 'shared'")
        return value

    @field_validator("screening_retention_years")
    @classmethod
    def _screening_retention(cls, value: int) -> int:
        return retention_years("screenings", value)

    @field_validator("audit_retention_years")
    @classmethod
    def _audit_retention(cls, value: int) -> int:
        return retention_years("audit", value)

    @field_validator("public_url", "fhir_canonical_base")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

    @property
    def canonical_base(self) -> str:
        """The canonical base in force (``fhir_canonical_base``'s description)."""
        if self.fhir_canonical_base is not None:
            return self.fhir_canonical_base
        if self.public_url is not None:
            return f"{self.public_url}/fhir/r4"
        return LEGACY_FHIR_CANONICAL_BASE

    @field_validator("cors_origins", "cds_cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            # A browser sends an origin exactly so, in lowercase: with a path, a trailing slash
            # or capitals it would never match.
            parts = urlsplit(origin)
            exact = origin == f"{parts.scheme}://{parts.netloc}" == origin.lower()
            plain_host = bool(parts.netloc) and "@" not in parts.netloc
            if origin != "*" and not (parts.scheme in ("https", "http") and exact and plain_host):
                raise ValueError(f"'{origin}' is not an origin (scheme://host[:port])")
        return origins

    @field_validator("smart_apps")
    @classmethod
    def _one_app_per_ehr(cls, apps: list[SmartApp]) -> list[SmartApp]:
        return unique_iss(apps)

    @field_validator("signed_link_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (a random value, kept secret)")
        return value

    @model_validator(mode="after")
    def _providers_name_their_audience(self) -> Settings:
        for provider in self.identity_providers:
            if provider.audience is None:
                raise ValueError(f"identity provider {provider.name} needs an audience")
        return self

    @model_validator(mode="after")
    def _cds_clients_need_the_public_url(self) -> Settings:
        # A CDS client's JWT names the URL it calls; derived from the Host header, a token
        # signed for another server would be accepted here.
        if self.cds_clients and self.public_url is None:
            raise ValueError(
                "CARELEVEL_CDS_CLIENTS needs CARELEVEL_PUBLIC_URL: the address the EHRs call, "
                "which their JWTs must name as aud"
            )
        return self

    @model_validator(mode="after")
    def _production_withholds_small_counts(self) -> Settings:
        # Figures about a handful of screenings could point at the people behind them.
        if self.environment == "production" and self.override_report_min_count < 5:
            raise ValueError("CARELEVEL_OVERRIDE_REPORT_MIN_COUNT: at least 5 in production")
        return self

    @model_validator(mode="after")
    def _production_has_real_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if self.is_sqlite:
            raise ValueError(
                "CARELEVEL_DATABASE_URL: production needs PostgreSQL "
                "(postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB), not the embedded SQLite file"
            )
        for name, url in (("CARELEVEL_DATABASE_URL", self.database_url),
                          ("CARELEVEL_REDIS_URL", self.redis_url)):  # fmt: skip
            if url is not None and _placeholder_password(url):
                raise ValueError(f"{name}: the password is a placeholder; set the real one")
        if self.public_url is None:
            raise ValueError(
                "CARELEVEL_PUBLIC_URL: production needs the address clients reach the service "
                "at (https://carelevel.example), from which FHIR links are built (never from a "
                "request's Host header)"
            )
        if self.bootstrap_admin:
            raise ValueError("CARELEVEL_BOOTSTRAP_ADMIN must be off in production")
        if self.cds_clients and self.signed_link_secret is None:
            raise ValueError(
                "CARELEVEL_SIGNED_LINK_SECRET: production with CDS clients needs it, so that "
                "every process opens the links the cards carry"
            )
        return self

    @model_validator(mode="after")
    def _body_within_the_deadline(self) -> Settings:
        if self.request_body_timeout_seconds > self.request_deadline_seconds:
            raise ValueError(
                "CARELEVEL_REQUEST_BODY_TIMEOUT_SECONDS must not exceed "
                "CARELEVEL_REQUEST_DEADLINE_SECONDS (the body is part of the request)"
            )
        return self

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Settings:
        if self.rate_limit_storage == "redis" and not self.redis_url:
            raise ValueError("CARELEVEL_RATE_LIMIT_STORAGE=redis needs CARELEVEL_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _counts_shared_by_every_process(self) -> Settings:
        if self.rate_limit_backend == "memory":
            counting_alone_with(self.workers)
            if self.environment == "production" and self.rate_limit_storage == "auto":
                raise ValueError(
                    "CARELEVEL_REDIS_URL: production needs Redis for rate limits shared by every "
                    "process and replica (or CARELEVEL_RATE_LIMIT_STORAGE=memory for a single "
                    "process that is the only replica)"
                )
        return self

    @property
    def json_logs(self) -> bool:
        return (self.log_format or ("json" if self.environment == "production" else "text")) == (
            "json"
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def creates_bootstrap_admin(self) -> bool:
        if self.bootstrap_admin is not None:
            return self.bootstrap_admin
        return self.is_sqlite and self.environment == "development"

    @property
    def rate_limit_backend(self) -> Literal["memory", "redis"]:
        if self.rate_limit_storage != "auto":
            return self.rate_limit_storage
        return "redis" if self.redis_url else "memory"


def counting_alone_with(workers: int) -> None:
    """Refuse ``workers`` processes that would each count rate limits in their own memory."""
    if workers > 1:
        raise ValueError(
            f"{workers} worker processes would each count rate limits alone: set "
            "CARELEVEL_REDIS_URL (rate limits in Redis), or run one worker"
        )


# What .env.example, docs and tutorials put where a password goes.
_PLACEHOLDER_PASSWORDS = frozenset(
    {"", "password", "change-me", "changeme", "change_me", "secret", "example", "postgres",
     "carelevel", "xxx", "todo"}
)  # fmt: skip


def _placeholder_password(url: str) -> bool:
    """Whether a database or Redis URL carries a password copied from an example (an empty
    one included)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return False  # not a URL this check can read; the driver reports it
    if password is None:
        # Postgres may authenticate otherwise (a client certificate, peer or IAM auth).
        return False
    return password.lower() in _PLACEHOLDER_PASSWORDS


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` and pass them in)."""
    return Settings()
