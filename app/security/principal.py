"""Who is calling: scopes, tenants and the authenticated principal of a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """What a client may do. A request needs every scope its operation names."""

    SCREENINGS_WRITE = "screenings:write"
    SCREENINGS_READ = "screenings:read"
    RULESETS_READ = "rulesets:read"
    RULESETS_WRITE = "rulesets:write"
    RULESETS_PUBLISH = "rulesets:publish"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"
    METRICS_READ = "metrics:read"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.SCREENINGS_WRITE: "Evaluate and store screenings; record clinician decisions.",
    Scope.SCREENINGS_READ: "Read, list and replay the tenant's screenings.",
    Scope.RULESETS_READ: "Read, validate, compare and export rule sets.",
    Scope.RULESETS_WRITE: "Create, edit, delete and import rule-set drafts.",
    Scope.RULESETS_PUBLISH: "Publish, activate and retire rule-set versions.",
    Scope.AUDIT_READ: "Read the tenant's audit trail.",
    Scope.ADMIN: "Manage the tenant's API clients.",
    Scope.METRICS_READ: "Read the service's Prometheus metrics (operator tenant only).",
}

ALL_SCOPES = frozenset(Scope)


def parse_scopes(values: str | list[str] | tuple[str, ...]) -> frozenset[Scope]:
    """Scopes from a comma- or space-separated string or a list; ValueError names an unknown
    one."""
    items = values.replace(",", " ").split() if isinstance(values, str) else list(values)
    scopes = set()
    for item in items:
        try:
            scopes.add(Scope(item.strip()))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise ValueError(f"unknown scope '{item}' (known: {known})") from None
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: its tenant, its id, its scopes and how it is named in records.

    ``client_id`` is the API client's id, or ``jwt:<provider>:<client>`` for a token from an
    identity provider; ``subject`` is the token's ``sub`` (the person or system it was issued
    to), None for API keys.
    """

    tenant: str
    client_id: str
    scopes: frozenset[Scope]
    label: str
    subject: str | None = None

    def missing(self, required: frozenset[Scope]) -> frozenset[Scope]:
        return required - self.scopes
