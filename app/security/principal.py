"""Who is calling: scopes, tenants and the authenticated principal of a request."""

from __future__ import annotations

import re
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
    PROGRAMS_READ = "programs:read"
    PROGRAMS_WRITE = "programs:write"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.SCREENINGS_WRITE: "Evaluate and store screenings; record clinician decisions.",
    Scope.SCREENINGS_READ: "Read, list and replay the tenant's screenings.",
    Scope.RULESETS_READ: "Read, validate, compare and export rule sets.",
    Scope.RULESETS_WRITE: "Create, edit, delete and import rule-set drafts.",
    Scope.RULESETS_PUBLISH: "Publish, activate and retire rule-set versions.",
    Scope.AUDIT_READ: "Read the tenant's audit trail.",
    Scope.ADMIN: "Manage the tenant's API clients.",
    Scope.METRICS_READ: "Read the service's Prometheus metrics (operator tenant only).",
    Scope.PROGRAMS_READ: "Read the program directory and match screenings to it.",
    Scope.PROGRAMS_WRITE: "Add, edit and retire programs of the directory.",
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


# A FHIR resource id, and a version suffix a reference may carry (``…/_history/2``).
PATIENT_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_VERSION_SUFFIX = re.compile(r"/_history/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class PatientContext:
    """The patient a token is bound to (SMART App Launch's ``patient``): the bare id, and the
    bases (the EHR's issuer and audiences, no trailing slash) an absolute reference to the
    patient may start with."""

    id: str
    bases: tuple[str, ...] = ()

    def names(self, reference: str) -> bool:
        """Whether ``reference`` (relative ``Patient/<id>`` or absolute ``<base>/Patient/<id>``,
        with or without a version) is this patient. An absolute reference to a server the
        token does not name is someone else's patient, whatever its id."""
        reference = _VERSION_SUFFIX.sub("", reference)
        relative = f"Patient/{self.id}"
        if reference == relative:
            return True
        return any(reference == f"{base}/{relative}" for base in self.bases)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client: its tenant, its id, its scopes and how it is named in records.

    ``client_id`` is the API client's id, or ``jwt:<provider>:<client>`` for a token from an
    identity provider; ``subject`` is the token's ``sub`` (the person or system it was issued
    to), None for API keys. ``patient``: the patient a SMART token is bound to; such a
    principal only reaches that patient's data (app/security/patients.py).
    """

    tenant: str
    client_id: str
    scopes: frozenset[Scope]
    label: str
    subject: str | None = None
    patient: PatientContext | None = None

    def may_see(self, subject_reference: str | None) -> bool:
        """Whether a stored result about ``subject_reference`` is this principal's to read:
        always, unless it is bound to a patient."""
        if self.patient is None:
            return True
        return subject_reference is not None and self.patient.names(subject_reference)

    def missing(self, required: frozenset[Scope]) -> frozenset[Scope]:
        return required - self.scopes
