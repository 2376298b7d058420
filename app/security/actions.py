"""Every operation of the API as an action: the scopes it needs, the kind of resource it
touches, and whether it leaves an audit event.

Routes declare their action once (``access(Action.SCREENING_READ)``); authorization, the
OpenAPI security requirement and the audit trail all read it from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.kernel.tenancy import TENANT_PATTERN
from app.security.principal import Scope


class Action(StrEnum):
    SCREENING_CREATE = "screening.create"
    SCREENING_EVALUATE = "screening.evaluate"
    SCREENING_READ = "screening.read"
    SCREENING_VIEW = "screening.view"
    SCREENING_LIST = "screening.list"
    SCREENING_REPLAY = "screening.replay"
    SCREENING_DECIDE = "screening.decide"
    QUESTIONNAIRE_READ = "questionnaire.read"
    TERMINOLOGY_READ = "terminology.read"
    RULE_SET_LIST = "rule_set.list"
    RULE_SET_VERSIONS = "rule_set.versions"
    RULE_SET_DIFF = "rule_set.diff"
    RULE_SET_IMPORT = "rule_set.import"
    VERSION_READ = "rule_set_version.read"
    VERSION_EXPORT = "rule_set_version.export"
    VERSION_VALIDATE = "rule_set_version.validate"
    VERSION_SIMULATE = "rule_set_version.simulate"
    VERSION_OVERRIDES = "rule_set_version.overrides"
    VERSION_CREATE = "rule_set_version.create"
    VERSION_UPDATE = "rule_set_version.update"
    VERSION_DELETE = "rule_set_version.delete"
    VERSION_PUBLISH = "rule_set_version.publish"
    VERSION_ACTIVATE = "rule_set_version.activate"
    VERSION_RETIRE = "rule_set_version.retire"
    CLIENT_CREATE = "client.create"
    CLIENT_LIST = "client.list"
    CLIENT_READ = "client.read"
    CLIENT_REVOKE = "client.revoke"
    AUDIT_LIST = "audit_event.list"
    METRICS_READ = "metrics.read"
    PERSON_SCREENINGS = "person.screenings"
    PROGRAM_CREATE = "program.create"
    PROGRAM_LIST = "program.list"
    PROGRAM_READ = "program.read"
    PROGRAM_UPDATE = "program.update"
    PROGRAM_RETIRE = "program.retire"
    PROGRAM_MATCH = "program.match"
    SCREENING_REFER = "screening.refer"
    SCREENING_REFERRALS = "screening.referrals"
    SCREENING_REFERRAL = "screening.referral"
    # Operators' commands (carelevel retention …), recorded like the API's operations.
    RETENTION_SET = "retention.set"
    RETENTION_EXPIRE = "retention.expire"


class ResourceType(StrEnum):
    SCREENING = "screening"
    QUESTIONNAIRE = "questionnaire"
    RULE_SET = "rule_set"
    RULE_SET_VERSION = "rule_set_version"
    CLIENT = "client"
    AUDIT_EVENT = "audit_event"
    METRICS = "metrics"
    RETENTION = "retention"
    PERSON = "person"
    PROGRAM = "program"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    resource_type: ResourceType
    scopes: frozenset[Scope]
    audited: bool = True
    # Open to a token bound to a patient (app/security/patients.py): about no one's data.
    patient_open: bool = False


def _spec(
    resource: ResourceType, *scopes: Scope, audited: bool = True, patient_open: bool = False
) -> ActionSpec:
    return ActionSpec(resource, frozenset(scopes), audited, patient_open)


_S, _R, _V = ResourceType.SCREENING, ResourceType.RULE_SET, ResourceType.RULE_SET_VERSION

ACTIONS: Mapping[Action, ActionSpec] = {
    Action.SCREENING_CREATE: _spec(_S, Scope.SCREENINGS_WRITE),
    # Evaluation stores nothing and reads nothing stored: the caller already holds every
    # value involved, so there is no access to record (the access log still has the request).
    Action.SCREENING_EVALUATE: _spec(_S, Scope.SCREENINGS_WRITE, audited=False, patient_open=True),
    Action.SCREENING_READ: _spec(_S, Scope.SCREENINGS_READ),
    # Opening a signed link (app/security/links.py): the link is the authority, so no scope;
    # the event names the client the link was made for.
    Action.SCREENING_VIEW: _spec(_S),
    Action.SCREENING_LIST: _spec(_S, Scope.SCREENINGS_READ),
    Action.SCREENING_REPLAY: _spec(_S, Scope.SCREENINGS_READ),
    Action.SCREENING_DECIDE: _spec(_S, Scope.SCREENINGS_WRITE),
    Action.QUESTIONNAIRE_READ: _spec(ResourceType.QUESTIONNAIRE, audited=False, patient_open=True),
    Action.TERMINOLOGY_READ: _spec(ResourceType.QUESTIONNAIRE, audited=False, patient_open=True),
    Action.RULE_SET_LIST: _spec(_R, Scope.RULESETS_READ),
    Action.RULE_SET_VERSIONS: _spec(_R, Scope.RULESETS_READ),
    Action.RULE_SET_DIFF: _spec(_R, Scope.RULESETS_READ),
    Action.RULE_SET_IMPORT: _spec(_V, Scope.RULESETS_WRITE),
    Action.VERSION_READ: _spec(_V, Scope.RULESETS_READ),
    Action.VERSION_EXPORT: _spec(_V, Scope.RULESETS_READ),
    Action.VERSION_VALIDATE: _spec(_V, Scope.RULESETS_READ),
    # A simulation re-evaluates the tenant's stored screenings.
    Action.VERSION_SIMULATE: _spec(_V, Scope.RULESETS_READ, Scope.SCREENINGS_READ),
    # The override report counts the tenant's clinician decisions on stored screenings.
    Action.VERSION_OVERRIDES: _spec(_V, Scope.RULESETS_READ, Scope.SCREENINGS_READ),
    Action.VERSION_CREATE: _spec(_V, Scope.RULESETS_WRITE),
    Action.VERSION_UPDATE: _spec(_V, Scope.RULESETS_WRITE),
    Action.VERSION_DELETE: _spec(_V, Scope.RULESETS_WRITE),
    Action.VERSION_PUBLISH: _spec(_V, Scope.RULESETS_PUBLISH),
    Action.VERSION_ACTIVATE: _spec(_V, Scope.RULESETS_PUBLISH),
    Action.VERSION_RETIRE: _spec(_V, Scope.RULESETS_PUBLISH),
    Action.CLIENT_CREATE: _spec(ResourceType.CLIENT, Scope.ADMIN),
    Action.CLIENT_LIST: _spec(ResourceType.CLIENT, Scope.ADMIN),
    Action.CLIENT_READ: _spec(ResourceType.CLIENT, Scope.ADMIN),
    Action.CLIENT_REVOKE: _spec(ResourceType.CLIENT, Scope.ADMIN),
    Action.AUDIT_LIST: _spec(ResourceType.AUDIT_EVENT, Scope.AUDIT_READ),
    # Scraped every few seconds and about no one: not worth an audit event each time.
    Action.METRICS_READ: _spec(ResourceType.METRICS, Scope.METRICS_READ, audited=False),
    Action.PROGRAM_CREATE: _spec(ResourceType.PROGRAM, Scope.PROGRAMS_WRITE),
    Action.PROGRAM_LIST: _spec(ResourceType.PROGRAM, Scope.PROGRAMS_READ),
    Action.PROGRAM_READ: _spec(ResourceType.PROGRAM, Scope.PROGRAMS_READ),
    Action.PROGRAM_UPDATE: _spec(ResourceType.PROGRAM, Scope.PROGRAMS_WRITE),
    Action.PROGRAM_RETIRE: _spec(ResourceType.PROGRAM, Scope.PROGRAMS_WRITE),
    # A person's screenings over time; the event names the pseudonymous person id.
    Action.PERSON_SCREENINGS: _spec(ResourceType.PERSON, Scope.SCREENINGS_READ),
    # Matching reads a screening (stored, or answers given) and the directory; it stores nothing.
    Action.PROGRAM_MATCH: _spec(_S, Scope.PROGRAMS_READ, Scope.SCREENINGS_READ),
    Action.SCREENING_REFER: _spec(_S, Scope.PROGRAMS_READ, Scope.SCREENINGS_WRITE),
    Action.SCREENING_REFERRALS: _spec(_S, Scope.SCREENINGS_READ),
    Action.SCREENING_REFERRAL: _spec(_S, Scope.SCREENINGS_READ),
    Action.RETENTION_SET: _spec(ResourceType.RETENTION, Scope.ADMIN),
    Action.RETENTION_EXPIRE: _spec(ResourceType.RETENTION, Scope.ADMIN),
}


_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_SCREENING = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OWNER = re.compile(TENANT_PATTERN.strip("^$"))
_KEY = re.compile(r"[a-z][a-z0-9-]{1,63}")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{7,63}")  # PERSON_ID_PATTERN (app/screenings)


def resource_id_from_path(path_params: Mapping[str, str]) -> str | None:
    """The id of the resource a request names in its path: a screening, client or program id,
    or a rule set as ``owner/key`` and a version as ``owner/key/version`` (natural keys: version
    numbers are never reused). None when the path holds something that is not an id: the
    trail records ids, never whatever text a request put where one belongs."""
    for name in ("screening_id", "client_id", "program_id"):
        if name in path_params:
            return path_params[name] if _ID.fullmatch(path_params[name]) else None
    if "person_id" in path_params:  # pseudonymous, never a direct identifier
        return path_params["person_id"] if _PERSON.fullmatch(path_params["person_id"]) else None
    for name in ("observation_id", "service_request_id"):
        if name in path_params:  # FHIR resources of a screening: <screening id>[-<part>]
            screening = path_params[name][:36]
            return screening if _SCREENING.fullmatch(screening) else None
    owner, key = path_params.get("owner"), path_params.get("key")
    version = path_params.get("version")
    if owner is None or not _OWNER.fullmatch(owner):
        return None
    if key is None:
        return owner
    if not _KEY.fullmatch(key) or (version is not None and not _VERSION.fullmatch(version)):
        return None
    return f"{owner}/{key}/{version}" if version is not None else f"{owner}/{key}"


def version_resource_id(owner: str, key: str, version: int) -> str:
    return f"{owner}/{key}/{version}"
