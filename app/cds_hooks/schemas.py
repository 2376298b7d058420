"""CDS Hooks 2.0 wire models.

Field names are the wire names (camelCase), so there are no aliases.

Response side (what this service emits: discovery, cards, system actions) forbids unknown
fields. CDS Hooks JSON must not contain nulls: serialize with `to_wire()`, which is
`model_dump(mode="json", exclude_none=True)`, or `response_model_exclude_none=True` on a route.

Request side (what a CDS client sends: service calls, feedback) allows unknown extension fields
at the top level and in the hook context, but validates the fields it defines strictly (no
type coercion) and bounds their lengths.
"""

# ruff: noqa: N815 - the CDS Hooks wire names are camelCase

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

Indicator = Literal["info", "warning", "critical"]
SelectionBehavior = Literal["at-most-one", "any"]
ActionType = Literal["create", "update", "delete"]
LinkType = Literal["absolute", "smart"]
FeedbackOutcome = Literal["accepted", "overridden"]

MAX_SUMMARY_CHARACTERS = 139  # the spec says "< 140 characters"
MAX_IDENTIFIER = 200
MAX_URL = 2048
MAX_TEXT = 10_000
MAX_FEEDBACK_ITEMS = 100
MAX_LIST_ITEMS = 100

# Root-level primitive context fields of the hooks this service knows; only these may appear
# in a prefetch token (`{{context.patientId}}`).
PREFETCH_CONTEXT_FIELDS: dict[str, frozenset[str]] = {
    "patient-view": frozenset({"userId", "patientId", "encounterId"}),
    "order-select": frozenset({"userId", "patientId", "encounterId"}),
}
PREFETCH_USER_TOKENS = frozenset(
    {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
)

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_FHIR_ID = re.compile(r"[A-Za-z0-9.\-]+")
_REFERENCE = re.compile(r"([A-Z][A-Za-z]*)/([A-Za-z0-9.\-]+)")
_SERVICE_ID = re.compile(r"[A-Za-z0-9._~\-]+")  # one unreserved URL path segment
_PREFETCH_TOKEN = re.compile(r"\{\{(.*?)\}\}")
_CONTEXT_TOKEN = re.compile(r"context\.([A-Za-z_][A-Za-z0-9_]*)")
# ASCII digits only: `\d` would also match other scripts' digits.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_string", "must not be empty or blank")
    return value


def _identifier(value: str) -> str:
    _not_blank(value)
    if _CONTROL_CHARACTER.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


def _fhir_id(value: str) -> str:
    if not _FHIR_ID.fullmatch(value):
        raise PydanticCustomError(
            "fhir_id", "must be a FHIR id (ASCII letters, digits, '-' and '.')"
        )
    return value


def _reference(value: str) -> str:
    if not _REFERENCE.fullmatch(value):
        raise PydanticCustomError(
            "fhir_reference", "must be a relative reference such as 'Practitioner/123'"
        )
    return value


def _split_url(value: str) -> SplitResult | None:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return None
    return parts


def _absolute_url(value: str) -> str:
    _identifier(value)
    parts = _split_url(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("absolute_url", "must be an absolute http(s) URL")
    return value


def _fhir_server(value: str) -> str:
    # Control characters first: urlsplit silently drops tabs and newlines.
    _identifier(value)
    parts = _split_url(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("fhir_server", "must be an absolute https URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise PydanticCustomError("fhir_server", "must use https (http only for localhost)")
    if parts.username is not None or parts.password is not None:
        raise PydanticCustomError("fhir_server", "must not contain credentials")
    if parts.query or parts.fragment:
        raise PydanticCustomError("fhir_server", "must not have a query or fragment")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rfc3339(value: object) -> object:
    # Pydantic's own datetime parsing also takes Unix timestamps and dates without seconds.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "rfc3339", "must be an RFC 3339 date-time with a timezone, e.g. 2026-11-20T14:07:31Z"
        )
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as error:
        raise PydanticCustomError(
            "rfc3339", "is not a valid date-time: {reason}", {"reason": str(error)}
        ) from None


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _contains_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_contains_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_null(item) for item in value)
    return False


_NonBlank = Annotated[str, AfterValidator(_not_blank)]
_Identifier = Annotated[
    str, StringConstraints(max_length=MAX_IDENTIFIER), AfterValidator(_identifier)
]
_FhirId = Annotated[str, StringConstraints(max_length=MAX_IDENTIFIER), AfterValidator(_fhir_id)]
_Reference = Annotated[
    str, StringConstraints(max_length=MAX_IDENTIFIER), AfterValidator(_reference)
]
_AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
_FhirServerUrl = Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_fhir_server)]
_Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_no_nul)]
_Rfc3339Utc = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_to_utc)]


# --- Response side ---------------------------------------------------------------------------


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict without nulls (CDS Hooks JSON omits absent fields)."""
        return self.model_dump(mode="json", exclude_none=True)


class Coding(_WireModel):
    """A CDS Hooks Coding; `display` is required where a human must read it (overrideReasons)."""

    system: _NonBlank
    code: _NonBlank
    display: _NonBlank | None = None


def _has_display(coding: Coding) -> Coding:
    if coding.display is None:
        raise PydanticCustomError("display_required", "an override reason needs a display")
    return coding


class Source(_WireModel):
    """Who produced a card."""

    label: _NonBlank
    url: _AbsoluteUrl | None = None
    icon: _AbsoluteUrl | None = None
    topic: Coding | None = None


class Action(_WireModel):
    """A change to the EHR's data: `resource` for create/update, `resourceId` for delete."""

    type: ActionType
    description: _NonBlank
    resource: dict[str, Any] | None = Field(default=None, validate_default=True)
    resourceId: _Reference | None = Field(default=None, validate_default=True)

    @field_validator("resource")
    @classmethod
    def _resource_matches_type(
        cls, value: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        action_type = info.data.get("type")
        if action_type is None:
            return value
        if action_type == "delete":
            if value is not None:
                raise PydanticCustomError(
                    "resource_not_allowed", "not allowed for delete; use resourceId"
                )
            return value
        if value is None:
            raise PydanticCustomError("resource_required", "required for create and update")
        resource_type = value.get("resourceType")
        if not isinstance(resource_type, str) or not resource_type:
            raise PydanticCustomError("resource_type", "must be a FHIR resource with resourceType")
        if action_type == "update" and not value.get("id"):
            raise PydanticCustomError("resource_id", "an updated resource needs its id")
        if _contains_null(value):
            raise PydanticCustomError("null_in_resource", "FHIR JSON must not contain nulls")
        return value

    @field_validator("resourceId")
    @classmethod
    def _resource_id_for_delete(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("type") == "delete":
            raise PydanticCustomError("resource_id_required", "required for delete")
        return value


class Suggestion(_WireModel):
    """A set of actions the user may accept together."""

    label: _NonBlank
    uuid: _Identifier | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_WireModel):
    """A link to a reference page (absolute) or a SMART app launch (smart)."""

    label: _NonBlank
    url: _AbsoluteUrl
    type: LinkType
    appContext: str | None = None
    autolaunchable: bool | None = None

    @field_validator("appContext")
    @classmethod
    def _app_context_for_smart(cls, value: str | None, info: ValidationInfo) -> str | None:
        link_type = info.data.get("type")
        if value is not None and link_type is not None and link_type != "smart":
            raise PydanticCustomError("app_context", "only allowed for smart links")
        return value


class Card(_WireModel):
    """One piece of guidance shown to the user."""

    uuid: _Identifier | None = None
    summary: _NonBlank
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: SelectionBehavior | None = Field(default=None, validate_default=True)
    overrideReasons: list[Annotated[Coding, AfterValidator(_has_display)]] | None = None
    links: list[Link] | None = None

    @field_validator("summary")
    @classmethod
    def _summary_length(cls, value: str) -> str:
        # len() counts code points, not UTF-8 bytes.
        if len(value) > MAX_SUMMARY_CHARACTERS:
            raise PydanticCustomError(
                "summary_too_long",
                "must be shorter than 140 characters (got {length})",
                {"length": len(value)},
            )
        return value

    @field_validator("suggestions")
    @classmethod
    def _unique_suggestion_uuids(cls, value: list[Suggestion] | None) -> list[Suggestion] | None:
        uuids = [suggestion.uuid for suggestion in value or [] if suggestion.uuid is not None]
        if len(uuids) != len(set(uuids)):
            raise PydanticCustomError("duplicate_uuid", "suggestion uuids must be unique")
        return value

    @field_validator("selectionBehavior")
    @classmethod
    def _selection_behavior_with_suggestions(
        cls, value: SelectionBehavior | None, info: ValidationInfo
    ) -> SelectionBehavior | None:
        if value is None and info.data.get("suggestions") is not None:
            raise PydanticCustomError(
                "selection_behavior_required", "required when suggestions are present"
            )
        return value


class CdsResponse(_WireModel):
    """A service's answer to a hook call; `{"cards": []}` means no guidance."""

    cards: list[Card]
    systemActions: list[Action] | None = None

    @field_validator("cards")
    @classmethod
    def _unique_card_uuids(cls, value: list[Card]) -> list[Card]:
        # Feedback names a card by its uuid alone.
        uuids = [card.uuid for card in value if card.uuid is not None]
        if len(uuids) != len(set(uuids)):
            raise PydanticCustomError("duplicate_uuid", "card uuids must be unique")
        return value


class ServiceDescription(_WireModel):
    """One entry of the discovery document."""

    hook: _NonBlank
    title: _NonBlank | None = None
    description: _NonBlank
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None

    @field_validator("id")
    @classmethod
    def _id_is_path_segment(cls, value: str) -> str:
        # The service lives at {baseUrl}/cds-services/{id}.
        if not _SERVICE_ID.fullmatch(value) or value in (".", ".."):
            raise PydanticCustomError(
                "service_id", "must be one URL path segment (letters, digits, '-', '.', '_', '~')"
            )
        return value

    @field_validator("prefetch")
    @classmethod
    def _prefetch_tokens(
        cls, value: dict[str, str] | None, info: ValidationInfo
    ) -> dict[str, str] | None:
        if value is None:
            return value
        hook = info.data.get("hook")
        context_fields = PREFETCH_CONTEXT_FIELDS.get(hook) if isinstance(hook, str) else None
        for key, template in value.items():
            if not key.strip():
                raise PydanticCustomError("prefetch_key", "keys must not be blank")
            if not template.strip():
                raise PydanticCustomError(
                    "prefetch_template", "{key}: template must not be blank", {"key": key}
                )
            for token in _PREFETCH_TOKEN.findall(template):
                _check_prefetch_token(key, token, context_fields)
            outside_tokens = _PREFETCH_TOKEN.sub("", template)
            if "{{" in outside_tokens or "}}" in outside_tokens:
                raise PydanticCustomError(
                    "prefetch_token", "{key}: unbalanced '{{' or '}}'", {"key": key}
                )
        return value


def _check_prefetch_token(key: str, token: str, context_fields: frozenset[str] | None) -> None:
    if token in PREFETCH_USER_TOKENS:
        return
    match = _CONTEXT_TOKEN.fullmatch(token)
    if match is None:
        raise PydanticCustomError(
            "prefetch_token",
            "{key}: token '{token}' must be a user token or a root-level context field",
            {"key": key, "token": token},
        )
    if context_fields is not None and match.group(1) not in context_fields:
        raise PydanticCustomError(
            "prefetch_token",
            "{key}: context field '{field}' is not a primitive field of this hook's context",
            {"key": key, "field": match.group(1)},
        )


class Discovery(_WireModel):
    """`GET /cds-services`: the services this CDS service offers."""

    services: list[ServiceDescription]

    @field_validator("services")
    @classmethod
    def _unique_hook_and_id(cls, value: list[ServiceDescription]) -> list[ServiceDescription]:
        # One id may serve several hooks, but each (hook, id) pair must be unambiguous.
        pairs = [(service.hook, service.id) for service in value]
        if len(pairs) != len(set(pairs)):
            raise PydanticCustomError("duplicate_service", "each (hook, id) must be listed once")
        return value


# --- Request side ----------------------------------------------------------------------------


class _RequestModel(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class FhirAuthorization(BaseModel):
    """The short-lived token a client grants for FHIR access; never persist or log it.

    `repr()` hides `access_token`; dumps include it, so drop `fhirAuthorization` before storing
    a request.
    """

    # Unknown fields are dropped rather than kept: nothing else of a credential is wanted.
    model_config = ConfigDict(extra="ignore", strict=True)

    access_token: Annotated[
        str, StringConstraints(max_length=8192), AfterValidator(_identifier)
    ] = Field(repr=False)
    token_type: Literal["Bearer"]
    expires_in: int = Field(gt=0)
    scope: Annotated[str, StringConstraints(max_length=4096), AfterValidator(_identifier)]
    subject: _Identifier
    # CONDITIONAL in CDS Hooks 2.0: with patient/ scopes the client SHOULD name the patient,
    # but may not, so a token without it is accepted (carelevel then relies on the context's
    # patientId and the server's own restriction of the token).
    patient: _FhirId | None = None


class HookRequest(_RequestModel):
    """A CDS client's service call (CDS Hooks' `ServiceRequest`, renamed to avoid FHIR's)."""

    hook: _Identifier
    hookInstance: _Identifier
    fhirServer: _FhirServerUrl | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # A key with null means "no data"; an unsatisfied key is absent.
    prefetch: dict[str, Any] | None = None

    @field_validator("fhirAuthorization")
    @classmethod
    def _authorization_needs_server(
        cls, value: FhirAuthorization | None, info: ValidationInfo
    ) -> FhirAuthorization | None:
        # An invalid fhirServer is missing from info.data and already reported.
        if value is not None and "fhirServer" in info.data and info.data["fhirServer"] is None:
            raise PydanticCustomError("fhir_server_required", "requires fhirServer")
        return value


class PatientViewContext(_RequestModel):
    """Context of `patient-view`."""

    userId: _Reference
    patientId: _FhirId
    encounterId: _FhirId | None = None

    @field_validator("userId")
    @classmethod
    def _user_type(cls, value: str) -> str:
        return _check_user_type(
            value, ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
        )


class OrderSelectContext(_RequestModel):
    """Context of `order-select`."""

    userId: _Reference
    patientId: _FhirId
    encounterId: _FhirId | None = None
    # Declared before selections so that the selections validator can see the Bundle.
    draftOrders: dict[str, Any]
    selections: list[_Reference] = Field(min_length=1, max_length=MAX_LIST_ITEMS)

    @field_validator("userId")
    @classmethod
    def _user_type(cls, value: str) -> str:
        return _check_user_type(value, ("Practitioner", "PractitionerRole"))

    @field_validator("draftOrders")
    @classmethod
    def _draft_orders_bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise PydanticCustomError("bundle_required", "must be a FHIR Bundle")
        if not isinstance(value.get("entry", []), list):
            raise PydanticCustomError("bundle_entry", "entry must be a list")
        return value

    @field_validator("selections")
    @classmethod
    def _selections_in_draft_orders(cls, value: list[str], info: ValidationInfo) -> list[str]:
        draft_orders = info.data.get("draftOrders")
        if draft_orders is None:
            return value
        drafted = _bundle_references(draft_orders)
        missing = [selection for selection in value if selection not in drafted]
        if missing:
            raise PydanticCustomError(
                "selection_not_drafted",
                "not in draftOrders: {missing}",
                {"missing": ", ".join(missing)},
            )
        return value


def _check_user_type(value: str, allowed: tuple[str, ...]) -> str:
    if value.split("/", 1)[0] not in allowed:
        raise PydanticCustomError(
            "user_type", "must reference one of: {allowed}", {"allowed": ", ".join(allowed)}
        )
    return value


def _bundle_references(bundle: dict[str, Any]) -> set[str]:
    references: set[str] = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            references.add(f"{resource.get('resourceType')}/{resource.get('id')}")
    return references


HookContext = PatientViewContext | OrderSelectContext
_ContextT = TypeVar("_ContextT", PatientViewContext, OrderSelectContext)


class _ContextEnvelope(BaseModel, Generic[_ContextT]):
    # Wrapping the context puts "context" at the front of every error location.
    model_config = ConfigDict(title="HookRequest")

    context: _ContextT


_CONTEXT_ENVELOPES: dict[
    str, type[_ContextEnvelope[PatientViewContext]] | type[_ContextEnvelope[OrderSelectContext]]
] = {
    "patient-view": _ContextEnvelope[PatientViewContext],
    "order-select": _ContextEnvelope[OrderSelectContext],
}


class UnsupportedHook(ValueError):
    """The request's hook has no context model here."""

    def __init__(self, hook: str) -> None:
        super().__init__(f"unsupported hook: {hook!r}")
        self.hook = hook


def parse_context(request: HookRequest) -> HookContext:
    """Validate `request.context` against its hook's model.

    Raises `UnsupportedHook` for other hooks and `ValidationError` (locations start with
    "context") for an invalid context.
    """
    envelope = _CONTEXT_ENVELOPES.get(request.hook)
    if envelope is None:
        raise UnsupportedHook(request.hook)
    return envelope.model_validate({"context": request.context}).context


class FeedbackCoding(_RequestModel):
    """A Coding as a client sends it back (in an override reason)."""

    system: Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_identifier)]
    code: _Identifier
    display: Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)] | None = (
        None
    )


class OverrideReason(_RequestModel):
    """Why the user overrode a card."""

    reason: FeedbackCoding | None = None
    userComment: _Text | None = None


class AcceptedSuggestion(_RequestModel):
    """A suggestion the user accepted, by its uuid."""

    id: _Identifier


class Feedback(_RequestModel):
    """What the user did with one card."""

    card: _Identifier
    outcome: FeedbackOutcome
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS, validate_default=True
    )
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: _Rfc3339Utc

    @field_validator("acceptedSuggestions")
    @classmethod
    def _accepted_suggestions_for_accepted(
        cls, value: list[AcceptedSuggestion] | None, info: ValidationInfo
    ) -> list[AcceptedSuggestion] | None:
        outcome = info.data.get("outcome")
        if outcome == "accepted" and not value:
            raise PydanticCustomError(
                "accepted_suggestions_required", "at least one is required when accepted"
            )
        if outcome == "overridden" and value is not None:
            raise PydanticCustomError(
                "accepted_suggestions_not_allowed", "only allowed when the outcome is accepted"
            )
        return value

    @field_validator("overrideReason")
    @classmethod
    def _override_reason_for_overridden(
        cls, value: OverrideReason | None, info: ValidationInfo
    ) -> OverrideReason | None:
        if value is not None and info.data.get("outcome") == "accepted":
            raise PydanticCustomError(
                "override_reason_not_allowed", "only allowed when the outcome is overridden"
            )
        return value


class FeedbackRequest(_RequestModel):
    """`POST /cds-services/{id}/feedback` body."""

    feedback: list[Feedback] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)
