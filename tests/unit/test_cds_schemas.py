"""CDS Hooks 2.0 wire models: round trips, and each validation rule rejected on its own."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from app.cds_hooks.schemas import (
    AcceptedSuggestion,
    Action,
    Card,
    CdsResponse,
    Coding,
    Discovery,
    Feedback,
    FeedbackCoding,
    FeedbackRequest,
    FhirAuthorization,
    HookRequest,
    Link,
    OrderSelectContext,
    OverrideReason,
    PatientViewContext,
    ServiceDescription,
    Source,
    Suggestion,
    UnsupportedHook,
    parse_context,
)

DELETE = object()


def changed(payload: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """A deep copy of payload with the value at path replaced (or removed, for DELETE)."""
    result = copy.deepcopy(payload)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


# --- Valid payloads (from the reference notes) -----------------------------------------------


def coding() -> dict[str, Any]:
    return {
        "system": "https://loc.example.org/fhir/CodeSystem/card-topic",
        "code": "loc",
        "display": "Level of care",
    }


def source() -> dict[str, Any]:
    return {
        "label": "LOC Screening Service",
        "url": "https://loc.example.org/about",
        "topic": coding(),
    }


def create_action() -> dict[str, Any]:
    return {
        "type": "create",
        "description": "Create draft IOP referral",
        "resource": {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": {"text": "Referral to intensive outpatient program"},
            "subject": {"reference": "Patient/1288992"},
        },
    }


def update_action() -> dict[str, Any]:
    return {
        "type": "update",
        "description": "Mark the referral active",
        "resource": {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active"},
    }


def delete_action() -> dict[str, Any]:
    return {
        "type": "delete",
        "description": "Withdraw the draft referral",
        "resourceId": "ServiceRequest/sr-1",
    }


def suggestion() -> dict[str, Any]:
    return {
        "label": "Propose IOP referral",
        "uuid": "e56e1945-20b3-4393-8503-a1a20fd73152",
        "isRecommended": True,
        "actions": [create_action()],
    }


def smart_link() -> dict[str, Any]:
    return {
        "label": "Open screening details",
        "url": "https://loc.example.org/launch",
        "type": "smart",
        "appContext": "screening=7d7c1b0e",
        "autolaunchable": False,
    }


def card() -> dict[str, Any]:
    return {
        "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "summary": "Intake screening suggests intensive outpatient (IOP) level of care",
        "detail": "**PHQ-9:** 17  \n**Impairment:** severe  \nScreening aid - confirm clinically.",
        "indicator": "warning",
        "source": source(),
        "selectionBehavior": "at-most-one",
        "suggestions": [suggestion()],
        "overrideReasons": [
            {
                "system": "https://loc.example.org/fhir/CodeSystem/override",
                "code": "clinical-judgment",
                "display": "Clinical judgment differs",
            }
        ],
        "links": [smart_link()],
    }


def minimal_card() -> dict[str, Any]:
    return {"summary": "No screening on file", "indicator": "info", "source": {"label": "LOC"}}


def cds_response() -> dict[str, Any]:
    return {"cards": [card()], "systemActions": [delete_action()]}


def service() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "id": "iop-loc-screen",
        "title": "IOP level-of-care screening",
        "description": "Shows the latest IOP suitability recommendation.",
        "prefetch": {
            "patient": "Patient/{{context.patientId}}",
            "phq9": "Observation?patient={{context.patientId}}&code=http://loinc.org|44261-6"
            "&_sort=-date&_count=1",
            "practitioner": "Practitioner/{{userPractitionerId}}",
        },
        "usageRequirements": "Screening aid only; requires clinician review.",
    }


def discovery() -> dict[str, Any]:
    return {"services": [service()]}


def authorization() -> dict[str, Any]:
    return {
        "access_token": "some-opaque-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Patient.read patient/Observation.read",
        "subject": "carelevel-client",
        "patient": "1288992",
    }


def hook_request() -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://ehr.example.com/fhir",
        "fhirAuthorization": authorization(),
        "context": {"userId": "Practitioner/abc", "patientId": "1288992", "encounterId": "89284"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "1288992"},
            "phq9": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }


def order_select_context() -> dict[str, Any]:
    return {
        "userId": "PractitionerRole/123",
        "patientId": "1288992",
        "encounterId": "89284",
        "selections": ["ServiceRequest/iop-1"],
        "draftOrders": {
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "ServiceRequest", "id": "iop-1", "status": "draft"}},
                {"resource": {"resourceType": "MedicationRequest", "id": "m-2"}},
            ],
        },
    }


def order_select_request() -> dict[str, Any]:
    return {
        "hook": "order-select",
        "hookInstance": "3f1c7a40-0d53-4d5c-9f8e-1b2a3c4d5e6f",
        "context": order_select_context(),
    }


def accepted_feedback() -> dict[str, Any]:
    return {
        "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2026-11-20T14:07:31Z",
    }


def overridden_feedback() -> dict[str, Any]:
    return {
        "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "outcome": "overridden",
        "overrideReason": {
            "reason": {
                "system": "https://loc.example.org/fhir/CodeSystem/override",
                "code": "clinical-judgment",
                "display": "Clinical judgment differs",
            },
            "userComment": "Patient already enrolled\nin a program.",
        },
        "outcomeTimestamp": "2026-11-20T14:09:02Z",
    }


def feedback_request() -> dict[str, Any]:
    return {"feedback": [accepted_feedback(), overridden_feedback()]}


# --- Round trips -----------------------------------------------------------------------------

RESPONSE_PAYLOADS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Coding, coding()),
    (Coding, {"system": "http://snomed.info/sct", "code": "386053000"}),
    (Source, source()),
    (Source, {"label": "LOC", "icon": "https://loc.example.org/icon.png"}),
    (Action, create_action()),
    (Action, update_action()),
    (Action, delete_action()),
    (Suggestion, suggestion()),
    (Suggestion, {"label": "Do nothing"}),
    (Link, smart_link()),
    (Link, {"label": "Guideline", "url": "https://example.org/guideline", "type": "absolute"}),
    (Card, card()),
    (Card, minimal_card()),
    (CdsResponse, cds_response()),
    (CdsResponse, {"cards": []}),
    (ServiceDescription, service()),
    (ServiceDescription, {"hook": "order-select", "id": "iop-order", "description": "Orders."}),
    (Discovery, discovery()),
    (Discovery, {"services": []}),
]


@pytest.mark.parametrize(
    ("model", "payload"),
    RESPONSE_PAYLOADS,
    ids=[f"{model.__name__}-{index}" for index, (model, _) in enumerate(RESPONSE_PAYLOADS)],
)
def test_response_models_round_trip(model: type[BaseModel], payload: dict[str, Any]) -> None:
    parsed = model.model_validate(payload)
    wire = parsed.model_dump(mode="json", exclude_none=True)
    assert wire == payload
    assert model.model_validate_json(json.dumps(wire)) == parsed


def test_to_wire_is_the_json_dump_without_nulls() -> None:
    parsed = Card.model_validate(card())
    assert parsed.to_wire() == parsed.model_dump(mode="json", exclude_none=True) == card()


@pytest.mark.parametrize(
    "instance",
    [
        Coding(system="http://snomed.info/sct", code="386053000"),
        Source(label="LOC"),
        Action(type="delete", description="Withdraw", resourceId="ServiceRequest/1"),
        Suggestion(label="Do nothing"),
        Link(label="Guideline", url="https://example.org/g", type="absolute"),
        Card.model_validate(minimal_card()),
        CdsResponse(cards=[Card.model_validate(minimal_card())]),
        ServiceDescription(hook="patient-view", id="iop", description="Screens."),
        Discovery(services=[ServiceDescription(hook="patient-view", id="iop", description="S.")]),
    ],
    ids=lambda instance: type(instance).__name__,
)
def test_unset_optionals_are_omitted_not_null(instance: BaseModel) -> None:
    assert None in _leaves(instance.model_dump(mode="json")), "the case must have an unset field"
    wire = instance.model_dump(mode="json", exclude_none=True)
    assert None not in _leaves(wire)
    assert "null" not in json.dumps(wire)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


REQUEST_PAYLOADS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (FhirAuthorization, authorization()),
    (
        FhirAuthorization,
        {**changed(authorization(), ("patient",), DELETE), "scope": "user/Patient.read"},
    ),
    # CDS Hooks 2.0: with patient/ scopes `patient` SHOULD be given; it may be missing.
    (FhirAuthorization, changed(authorization(), ("patient",), DELETE)),
    (HookRequest, hook_request()),
    (HookRequest, {"hook": "patient-view", "hookInstance": "not-a-uuid", "context": {}}),
    (HookRequest, changed(hook_request(), ("prefetch", "phq9"), None)),
    (HookRequest, order_select_request()),
    (PatientViewContext, hook_request()["context"]),
    (PatientViewContext, {"userId": "Patient/1288992", "patientId": "1288992"}),
    (OrderSelectContext, order_select_context()),
    (AcceptedSuggestion, {"id": "e56e1945"}),
    (FeedbackCoding, {"system": "https://loc.example.org/cs", "code": "other"}),
    (OverrideReason, overridden_feedback()["overrideReason"]),
    (OverrideReason, {}),
    (Feedback, accepted_feedback()),
    (Feedback, overridden_feedback()),
    (Feedback, changed(overridden_feedback(), ("overrideReason",), DELETE)),
    (FeedbackRequest, feedback_request()),
]


@pytest.mark.parametrize(
    ("model", "payload"),
    REQUEST_PAYLOADS,
    ids=[f"{model.__name__}-{index}" for index, (model, _) in enumerate(REQUEST_PAYLOADS)],
)
def test_request_models_round_trip(model: type[BaseModel], payload: dict[str, Any]) -> None:
    from_python = model.model_validate(payload)
    from_json = model.model_validate_json(json.dumps(payload))
    assert from_python == from_json
    assert from_python.model_dump(mode="json", exclude_unset=True) == payload
    assert model.model_validate(from_python.model_dump(mode="json")) == from_python


def test_unknown_extension_fields_are_kept_at_the_top_level_and_in_context() -> None:
    payload = hook_request()
    payload["extension"] = {"com.example.tenant": "acme"}
    payload["context"]["com.example.ward"] = {"name": "4 West"}
    request = HookRequest.model_validate(payload)
    assert request.model_extra == {"extension": {"com.example.tenant": "acme"}}
    context = parse_context(request)
    assert isinstance(context, PatientViewContext)
    assert context.model_extra == {"com.example.ward": {"name": "4 West"}}
    assert request.model_dump(mode="json", exclude_unset=True) == payload


def test_unknown_authorization_fields_are_dropped_and_the_token_is_not_in_repr() -> None:
    payload = {**authorization(), "refresh_token": "long-lived-secret"}
    parsed = FhirAuthorization.model_validate(payload)
    assert "refresh_token" not in parsed.model_dump()
    assert parsed.access_token == "some-opaque-token"
    request = HookRequest.model_validate(changed(hook_request(), ("fhirAuthorization",), payload))
    assert "some-opaque-token" not in repr(request)
    assert "long-lived-secret" not in repr(request)


def test_a_null_prefetch_value_is_kept_apart_from_an_absent_key() -> None:
    payload = changed(hook_request(), ("prefetch", "phq9"), None)
    request = HookRequest.model_validate(payload)
    assert request.prefetch == {
        "patient": {"resourceType": "Patient", "id": "1288992"},
        "phq9": None,
    }


@pytest.mark.parametrize(
    "server",
    [
        "https://ehr.example.com/fhir",
        "https://ehr.example.com:8443/fhir/r4/",
        "http://localhost:8080/fhir",
        "http://127.0.0.1/fhir",
        "http://[::1]:8080/fhir",
    ],
)
def test_fhir_server_accepts_https_and_http_on_localhost(server: str) -> None:
    request = HookRequest.model_validate(changed(hook_request(), ("fhirServer",), server))
    assert request.fhirServer == server


def test_parse_context_picks_the_model_by_hook() -> None:
    patient_view = parse_context(HookRequest.model_validate(hook_request()))
    order_select = parse_context(HookRequest.model_validate(order_select_request()))
    assert patient_view == PatientViewContext(
        userId="Practitioner/abc", patientId="1288992", encounterId="89284"
    )
    assert isinstance(order_select, OrderSelectContext)
    assert order_select.selections == ["ServiceRequest/iop-1"]
    assert order_select.draftOrders["entry"][0]["resource"]["id"] == "iop-1"


def test_parse_context_refuses_an_unknown_hook() -> None:
    request = HookRequest.model_validate(changed(hook_request(), ("hook",), "order-sign"))
    with pytest.raises(UnsupportedHook, match="order-sign") as caught:
        parse_context(request)
    assert caught.value.hook == "order-sign"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-20T14:07:31Z", datetime(2026, 11, 20, 14, 7, 31, tzinfo=UTC)),
        ("2026-11-20t14:07:31z", datetime(2026, 11, 20, 14, 7, 31, tzinfo=UTC)),
        ("2026-11-20T16:07:31+02:00", datetime(2026, 11, 20, 14, 7, 31, tzinfo=UTC)),
        ("2026-11-20T14:07:31.125Z", datetime(2026, 11, 20, 14, 7, 31, 125000, tzinfo=UTC)),
    ],
)
def test_outcome_timestamp_is_normalized_to_utc(timestamp: str, expected: datetime) -> None:
    parsed = Feedback.model_validate(changed(accepted_feedback(), ("outcomeTimestamp",), timestamp))
    assert parsed.outcomeTimestamp == expected
    assert parsed.outcomeTimestamp.utcoffset() == expected.utcoffset()


# --- Summary length --------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["x", "é", "😀"])
def test_summary_of_139_characters_is_accepted_whatever_its_bytes(character: str) -> None:
    summary = character * 139
    parsed = Card.model_validate(changed(minimal_card(), ("summary",), summary))
    assert parsed.summary == summary


@pytest.mark.parametrize("character", ["x", "é", "😀"])
def test_summary_of_140_characters_is_rejected(character: str) -> None:
    assert_rejected(
        Card,
        changed(minimal_card(), ("summary",), character * 140),
        ("summary",),
        "shorter than 140 characters (got 140)",
    )


# --- Rejections ------------------------------------------------------------------------------


def assert_rejected(
    model: type[BaseModel], payload: Any, loc: tuple[str | int, ...], fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(payload)
    errors = [(error["loc"], error["msg"]) for error in caught.value.errors()]
    assert len(errors) == 1, errors
    assert errors[0][0] == loc, errors
    assert fragment in errors[0][1], errors


def _long(length: int) -> str:
    return "a" * length


Case = tuple[type[BaseModel], dict[str, Any], tuple[str | int, ...], str]

BLANK = "must not be empty or blank"
EXTRA = "Extra inputs are not permitted"
MISSING = "Field required"

RESPONSE_REJECTIONS: dict[str, Case] = {
    # Coding
    "coding-system-required": (
        Coding,
        changed(coding(), ("system",), DELETE),
        ("system",),
        MISSING,
    ),
    "coding-code-blank": (Coding, changed(coding(), ("code",), " "), ("code",), BLANK),
    "coding-extra": (Coding, {**coding(), "version": "1"}, ("version",), EXTRA),
    # Source
    "source-label-blank": (Source, changed(source(), ("label",), ""), ("label",), BLANK),
    "source-url-relative": (
        Source,
        changed(source(), ("url",), "loc.example.org/about"),
        ("url",),
        "absolute http(s) URL",
    ),
    "source-icon-scheme": (
        Source,
        {**source(), "icon": "ftp://loc.example.org/icon.png"},
        ("icon",),
        "absolute http(s) URL",
    ),
    "source-topic-coding": (
        Source,
        changed(source(), ("topic", "system"), DELETE),
        ("topic", "system"),
        MISSING,
    ),
    # Action
    "action-type": (
        Action,
        changed(create_action(), ("type",), "patch"),
        ("type",),
        "'create', 'update' or 'delete'",
    ),
    "action-description-required": (
        Action,
        changed(create_action(), ("description",), DELETE),
        ("description",),
        MISSING,
    ),
    "action-create-needs-resource": (
        Action,
        changed(create_action(), ("resource",), DELETE),
        ("resource",),
        "required for create and update",
    ),
    "action-update-needs-resource": (
        Action,
        changed(update_action(), ("resource",), DELETE),
        ("resource",),
        "required for create and update",
    ),
    "action-resource-type": (
        Action,
        changed(create_action(), ("resource", "resourceType"), DELETE),
        ("resource",),
        "resourceType",
    ),
    "action-update-resource-id": (
        Action,
        changed(update_action(), ("resource", "id"), DELETE),
        ("resource",),
        "needs its id",
    ),
    "action-resource-null": (
        Action,
        changed(create_action(), ("resource", "code", "text"), None),
        ("resource",),
        "must not contain nulls",
    ),
    "action-delete-needs-resource-id": (
        Action,
        changed(delete_action(), ("resourceId",), DELETE),
        ("resourceId",),
        "required for delete",
    ),
    "action-delete-no-resource": (
        Action,
        {**delete_action(), "resource": {"resourceType": "ServiceRequest", "id": "sr-1"}},
        ("resource",),
        "use resourceId",
    ),
    "action-resource-id-relative-reference": (
        Action,
        changed(delete_action(), ("resourceId",), "sr-1"),
        ("resourceId",),
        "relative reference",
    ),
    # Suggestion
    "suggestion-label-required": (
        Suggestion,
        changed(suggestion(), ("label",), DELETE),
        ("label",),
        MISSING,
    ),
    "suggestion-nested-action": (
        Suggestion,
        changed(suggestion(), ("actions", 0, "resource"), DELETE),
        ("actions", 0, "resource"),
        "required for create and update",
    ),
    # Link
    "link-type": (
        Link,
        changed(smart_link(), ("type",), "relative"),
        ("type",),
        "'absolute' or 'smart'",
    ),
    "link-app-context-only-smart": (
        Link,
        changed(smart_link(), ("type",), "absolute"),
        ("appContext",),
        "only allowed for smart links",
    ),
    "link-url-absolute": (
        Link,
        changed(smart_link(), ("url",), "/launch"),
        ("url",),
        "absolute http(s) URL",
    ),
    "link-label-blank": (Link, changed(smart_link(), ("label",), "\t"), ("label",), BLANK),
    # Card
    "card-summary-required": (Card, changed(card(), ("summary",), DELETE), ("summary",), MISSING),
    "card-summary-blank": (Card, changed(card(), ("summary",), "  "), ("summary",), BLANK),
    "card-indicator": (
        Card,
        changed(card(), ("indicator",), "urgent"),
        ("indicator",),
        "'info', 'warning' or 'critical'",
    ),
    "card-source-required": (Card, changed(card(), ("source",), DELETE), ("source",), MISSING),
    "card-selection-behavior-required": (
        Card,
        changed(card(), ("selectionBehavior",), DELETE),
        ("selectionBehavior",),
        "required when suggestions are present",
    ),
    "card-selection-behavior-required-for-empty-suggestions": (
        Card,
        {**minimal_card(), "suggestions": []},
        ("selectionBehavior",),
        "required when suggestions are present",
    ),
    "card-selection-behavior-code": (
        Card,
        changed(card(), ("selectionBehavior",), "all"),
        ("selectionBehavior",),
        "'at-most-one' or 'any'",
    ),
    "card-override-reason-display": (
        Card,
        changed(card(), ("overrideReasons", 0, "display"), DELETE),
        ("overrideReasons", 0),
        "needs a display",
    ),
    "card-suggestion-uuids-unique": (
        Card,
        changed(card(), ("suggestions",), [suggestion(), suggestion()]),
        ("suggestions",),
        "suggestion uuids must be unique",
    ),
    "card-uuid-length": (Card, changed(card(), ("uuid",), _long(201)), ("uuid",), "at most 200"),
    "card-extra": (Card, {**card(), "name": "IOP"}, ("name",), EXTRA),
    # CdsResponse
    "response-cards-required": (CdsResponse, {"systemActions": []}, ("cards",), MISSING),
    "response-card-uuids-unique": (
        CdsResponse,
        {"cards": [card(), card()]},
        ("cards",),
        "card uuids must be unique",
    ),
    "response-system-action": (
        CdsResponse,
        changed(cds_response(), ("systemActions", 0, "resourceId"), DELETE),
        ("systemActions", 0, "resourceId"),
        "required for delete",
    ),
    # ServiceDescription
    "service-description-required": (
        ServiceDescription,
        changed(service(), ("description",), DELETE),
        ("description",),
        MISSING,
    ),
    "service-hook-blank": (ServiceDescription, changed(service(), ("hook",), ""), ("hook",), BLANK),
    "service-id-path-segment": (
        ServiceDescription,
        changed(service(), ("id",), "iop/screen"),
        ("id",),
        "one URL path segment",
    ),
    "service-id-dot-dot": (
        ServiceDescription,
        changed(service(), ("id",), ".."),
        ("id",),
        "one URL path segment",
    ),
    "service-name-is-not-title": (
        ServiceDescription,
        {**changed(service(), ("title",), DELETE), "name": "IOP"},
        ("name",),
        EXTRA,
    ),
    "service-prefetch-nested-context-token": (
        ServiceDescription,
        changed(service(), ("prefetch", "patient"), "Patient/{{context.patient.id}}"),
        ("prefetch",),
        "patient: token 'context.patient.id' must be a user token or a root-level context field",
    ),
    "service-prefetch-non-primitive-context-field": (
        ServiceDescription,
        {
            **service(),
            "hook": "order-select",
            "prefetch": {"orders": "ServiceRequest?_id={{context.selections}}"},
        },
        ("prefetch",),
        "orders: context field 'selections' is not a primitive field",
    ),
    "service-prefetch-unknown-user-token": (
        ServiceDescription,
        changed(service(), ("prefetch", "patient"), "Practitioner/{{userId}}"),
        ("prefetch",),
        "token 'userId' must be a user token",
    ),
    "service-prefetch-unbalanced": (
        ServiceDescription,
        changed(service(), ("prefetch", "patient"), "Patient/{{context.patientId}"),
        ("prefetch",),
        "patient: unbalanced",
    ),
    "service-prefetch-blank-template": (
        ServiceDescription,
        changed(service(), ("prefetch", "patient"), " "),
        ("prefetch",),
        "patient: template must not be blank",
    ),
    "service-prefetch-template-string": (
        ServiceDescription,
        changed(service(), ("prefetch", "patient"), {"resourceType": "Patient"}),
        ("prefetch", "patient"),
        "valid string",
    ),
    # Discovery
    "discovery-services-required": (Discovery, {}, ("services",), MISSING),
    "discovery-hook-and-id-unique": (
        Discovery,
        {"services": [service(), service()]},
        ("services",),
        "each (hook, id) must be listed once",
    ),
}


def test_discovery_lists_one_id_under_several_hooks() -> None:
    second_hook = {**changed(service(), ("prefetch",), DELETE), "hook": "order-select"}
    parsed = Discovery.model_validate({"services": [service(), second_hook]})
    assert [(entry.hook, entry.id) for entry in parsed.services] == [
        ("patient-view", "iop-loc-screen"),
        ("order-select", "iop-loc-screen"),
    ]


def _feedback(**changes: Any) -> dict[str, Any]:
    return {**accepted_feedback(), **changes}


REQUEST_REJECTIONS: dict[str, Case] = {
    # HookRequest
    "request-hook-required": (
        HookRequest,
        changed(hook_request(), ("hook",), DELETE),
        ("hook",),
        MISSING,
    ),
    "request-hook-strict-string": (
        HookRequest,
        changed(hook_request(), ("hook",), 7),
        ("hook",),
        "valid string",
    ),
    "request-hook-strict-no-bytes": (
        HookRequest,
        changed(hook_request(), ("hook",), b"patient-view"),
        ("hook",),
        "valid string",
    ),
    "request-hook-instance-blank": (
        HookRequest,
        changed(hook_request(), ("hookInstance",), ""),
        ("hookInstance",),
        BLANK,
    ),
    "request-hook-instance-length": (
        HookRequest,
        changed(hook_request(), ("hookInstance",), _long(201)),
        ("hookInstance",),
        "at most 200 characters",
    ),
    "request-hook-instance-nul": (
        HookRequest,
        changed(hook_request(), ("hookInstance",), "d1577c69\x00"),
        ("hookInstance",),
        "control characters",
    ),
    "request-fhir-server-http": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "http://ehr.example.com/fhir"),
        ("fhirServer",),
        "must use https (http only for localhost)",
    ),
    "request-fhir-server-http-localhost-lookalike": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "http://localhost.example.com/fhir"),
        ("fhirServer",),
        "must use https",
    ),
    "request-fhir-server-scheme": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "ftp://ehr.example.com/fhir"),
        ("fhirServer",),
        "must be an absolute https URL",
    ),
    "request-fhir-server-relative": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "/fhir"),
        ("fhirServer",),
        "must be an absolute https URL",
    ),
    "request-fhir-server-bad-port": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "https://ehr.example.com:https/fhir"),
        ("fhirServer",),
        "must be an absolute https URL",
    ),
    "request-fhir-server-newline": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "https://ehr.example.com/fh\nir"),
        ("fhirServer",),
        "control characters",
    ),
    "request-fhir-server-credentials": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "https://user:pw@ehr.example.com/fhir"),
        ("fhirServer",),
        "must not contain credentials",
    ),
    "request-fhir-server-query": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "https://ehr.example.com/fhir?x=1"),
        ("fhirServer",),
        "must not have a query or fragment",
    ),
    "request-fhir-server-length": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), "https://ehr.example.com/" + _long(2048)),
        ("fhirServer",),
        "at most 2048 characters",
    ),
    "request-authorization-needs-server": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), DELETE),
        ("fhirAuthorization",),
        "requires fhirServer",
    ),
    "request-authorization-needs-non-null-server": (
        HookRequest,
        changed(hook_request(), ("fhirServer",), None),
        ("fhirAuthorization",),
        "requires fhirServer",
    ),
    "request-context-required": (
        HookRequest,
        changed(hook_request(), ("context",), DELETE),
        ("context",),
        MISSING,
    ),
    "request-context-object": (
        HookRequest,
        changed(hook_request(), ("context",), ["Patient/1"]),
        ("context",),
        "valid dictionary",
    ),
    "request-prefetch-object": (
        HookRequest,
        changed(hook_request(), ("prefetch",), [{"resourceType": "Patient"}]),
        ("prefetch",),
        "valid dictionary",
    ),
    # FhirAuthorization
    "authorization-token-required": (
        FhirAuthorization,
        changed(authorization(), ("access_token",), DELETE),
        ("access_token",),
        MISSING,
    ),
    "authorization-token-length": (
        FhirAuthorization,
        changed(authorization(), ("access_token",), _long(8193)),
        ("access_token",),
        "at most 8192 characters",
    ),
    "authorization-token-type": (
        FhirAuthorization,
        changed(authorization(), ("token_type",), "bearer"),
        ("token_type",),
        "'Bearer'",
    ),
    "authorization-expires-in-strict-int": (
        FhirAuthorization,
        changed(authorization(), ("expires_in",), "300"),
        ("expires_in",),
        "valid integer",
    ),
    "authorization-expires-in-positive": (
        FhirAuthorization,
        changed(authorization(), ("expires_in",), 0),
        ("expires_in",),
        "greater than 0",
    ),
    "authorization-scope-blank": (
        FhirAuthorization,
        changed(authorization(), ("scope",), ""),
        ("scope",),
        BLANK,
    ),
    "authorization-subject-required": (
        FhirAuthorization,
        changed(authorization(), ("subject",), DELETE),
        ("subject",),
        MISSING,
    ),
    "authorization-patient-fhir-id": (
        FhirAuthorization,
        changed(authorization(), ("patient",), "Patient/1288992"),
        ("patient",),
        "FHIR id",
    ),
    "authorization-nested-loc": (
        HookRequest,
        changed(hook_request(), ("fhirAuthorization", "token_type"), "MAC"),
        ("fhirAuthorization", "token_type"),
        "'Bearer'",
    ),
    # Feedback
    "feedback-card-required": (
        Feedback,
        changed(accepted_feedback(), ("card",), DELETE),
        ("card",),
        MISSING,
    ),
    "feedback-card-blank": (Feedback, _feedback(card=" "), ("card",), BLANK),
    "feedback-outcome": (
        Feedback,
        _feedback(outcome="ignored"),
        ("outcome",),
        "'accepted' or 'overridden'",
    ),
    "feedback-accepted-needs-suggestions": (
        Feedback,
        changed(accepted_feedback(), ("acceptedSuggestions",), DELETE),
        ("acceptedSuggestions",),
        "at least one is required when accepted",
    ),
    "feedback-accepted-needs-a-suggestion": (
        Feedback,
        _feedback(acceptedSuggestions=[]),
        ("acceptedSuggestions",),
        "at least one is required when accepted",
    ),
    "feedback-suggestion-id-required": (
        Feedback,
        _feedback(acceptedSuggestions=[{"uuid": "e56e1945"}]),
        ("acceptedSuggestions", 0, "id"),
        MISSING,
    ),
    "feedback-overridden-no-suggestions": (
        Feedback,
        {**overridden_feedback(), "acceptedSuggestions": [{"id": "e56e1945"}]},
        ("acceptedSuggestions",),
        "only allowed when the outcome is accepted",
    ),
    "feedback-accepted-no-override-reason": (
        Feedback,
        _feedback(overrideReason={"userComment": "n/a"}),
        ("overrideReason",),
        "only allowed when the outcome is overridden",
    ),
    "feedback-override-reason-coding": (
        Feedback,
        changed(overridden_feedback(), ("overrideReason", "reason", "code"), DELETE),
        ("overrideReason", "reason", "code"),
        MISSING,
    ),
    "feedback-user-comment-nul": (
        Feedback,
        changed(overridden_feedback(), ("overrideReason", "userComment"), "no\x00"),
        ("overrideReason", "userComment"),
        "NUL",
    ),
    "feedback-user-comment-length": (
        Feedback,
        changed(overridden_feedback(), ("overrideReason", "userComment"), _long(10_001)),
        ("overrideReason", "userComment"),
        "at most 10000 characters",
    ),
    "feedback-timestamp-required": (
        Feedback,
        changed(accepted_feedback(), ("outcomeTimestamp",), DELETE),
        ("outcomeTimestamp",),
        MISSING,
    ),
    "feedback-timestamp-needs-timezone": (
        Feedback,
        _feedback(outcomeTimestamp="2026-11-20T14:07:31"),
        ("outcomeTimestamp",),
        "RFC 3339 date-time with a timezone",
    ),
    "feedback-timestamp-t-separator": (
        Feedback,
        _feedback(outcomeTimestamp="2026-11-20 14:07:31Z"),
        ("outcomeTimestamp",),
        "RFC 3339 date-time",
    ),
    "feedback-timestamp-needs-seconds": (
        Feedback,
        _feedback(outcomeTimestamp="2026-11-20T14:07Z"),
        ("outcomeTimestamp",),
        "RFC 3339 date-time",
    ),
    "feedback-timestamp-date-only": (
        Feedback,
        _feedback(outcomeTimestamp="2026-11-20"),
        ("outcomeTimestamp",),
        "RFC 3339 date-time",
    ),
    "feedback-timestamp-not-a-number": (
        Feedback,
        _feedback(outcomeTimestamp=1_795_000_000),
        ("outcomeTimestamp",),
        "RFC 3339 date-time",
    ),
    "feedback-timestamp-ascii-digits": (
        Feedback,
        _feedback(outcomeTimestamp="٢٠٢٦-11-20T14:07:31Z"),
        ("outcomeTimestamp",),
        "RFC 3339 date-time",
    ),
    "feedback-timestamp-real-date": (
        Feedback,
        _feedback(outcomeTimestamp="2026-13-20T14:07:31Z"),
        ("outcomeTimestamp",),
        "not a valid date-time",
    ),
    # FeedbackRequest
    "feedback-request-empty": (
        FeedbackRequest,
        {"feedback": []},
        ("feedback",),
        "at least 1 item",
    ),
    "feedback-request-too-many": (
        FeedbackRequest,
        {"feedback": [accepted_feedback()] * 101},
        ("feedback",),
        "at most 100 items",
    ),
    "feedback-request-nested-loc": (
        FeedbackRequest,
        changed(feedback_request(), ("feedback", 1, "outcome"), "dismissed"),
        ("feedback", 1, "outcome"),
        "'accepted' or 'overridden'",
    ),
}


@pytest.mark.parametrize(
    ("model", "payload", "loc", "fragment"),
    list(RESPONSE_REJECTIONS.values()) + list(REQUEST_REJECTIONS.values()),
    ids=list(RESPONSE_REJECTIONS) + list(REQUEST_REJECTIONS),
)
def test_rule_is_enforced(
    model: type[BaseModel], payload: dict[str, Any], loc: tuple[str | int, ...], fragment: str
) -> None:
    assert_rejected(model, payload, loc, fragment)


def test_naive_datetime_is_rejected() -> None:
    assert_rejected(
        Feedback,
        _feedback(outcomeTimestamp=datetime(2026, 11, 20, 14, 7, 31)),
        ("outcomeTimestamp",),
        "timezone",
    )


# Context rules are checked by parse_context, so their locations start with "context".
CONTEXT_REJECTIONS: dict[str, tuple[dict[str, Any], tuple[str | int, ...], str]] = {
    "patient-view-user-reference": (
        changed(hook_request(), ("context", "userId"), "abc"),
        ("context", "userId"),
        "relative reference",
    ),
    "patient-view-user-type": (
        changed(hook_request(), ("context", "userId"), "Device/1"),
        ("context", "userId"),
        "must reference one of: Practitioner, PractitionerRole, Patient, RelatedPerson",
    ),
    "patient-view-patient-required": (
        changed(hook_request(), ("context", "patientId"), DELETE),
        ("context", "patientId"),
        MISSING,
    ),
    "patient-view-patient-fhir-id": (
        changed(hook_request(), ("context", "patientId"), "1288992&_has=x"),
        ("context", "patientId"),
        "FHIR id",
    ),
    "patient-view-patient-length": (
        changed(hook_request(), ("context", "patientId"), _long(201)),
        ("context", "patientId"),
        "at most 200 characters",
    ),
    "patient-view-encounter-strict-string": (
        changed(hook_request(), ("context", "encounterId"), 89284),
        ("context", "encounterId"),
        "valid string",
    ),
    "order-select-user-type": (
        changed(order_select_request(), ("context", "userId"), "Patient/1288992"),
        ("context", "userId"),
        "must reference one of: Practitioner, PractitionerRole",
    ),
    "order-select-selections-required": (
        changed(order_select_request(), ("context", "selections"), DELETE),
        ("context", "selections"),
        MISSING,
    ),
    "order-select-selections-non-empty": (
        changed(order_select_request(), ("context", "selections"), []),
        ("context", "selections"),
        "at least 1 item",
    ),
    "order-select-selection-reference": (
        changed(order_select_request(), ("context", "selections", 0), "iop-1"),
        ("context", "selections", 0),
        "relative reference",
    ),
    "order-select-selection-in-draft-orders": (
        changed(order_select_request(), ("context", "selections", 0), "ServiceRequest/other"),
        ("context", "selections"),
        "not in draftOrders: ServiceRequest/other",
    ),
    "order-select-draft-orders-bundle": (
        changed(order_select_request(), ("context", "draftOrders", "resourceType"), "List"),
        ("context", "draftOrders"),
        "must be a FHIR Bundle",
    ),
    "order-select-draft-orders-entry-list": (
        changed(order_select_request(), ("context", "draftOrders", "entry"), {}),
        ("context", "draftOrders"),
        "entry must be a list",
    ),
    "order-select-draft-orders-required": (
        changed(order_select_request(), ("context", "draftOrders"), DELETE),
        ("context", "draftOrders"),
        MISSING,
    ),
}


@pytest.mark.parametrize(
    ("payload", "loc", "fragment"),
    list(CONTEXT_REJECTIONS.values()),
    ids=list(CONTEXT_REJECTIONS),
)
def test_context_rule_is_enforced(
    payload: dict[str, Any], loc: tuple[str | int, ...], fragment: str
) -> None:
    request = HookRequest.model_validate(payload)  # context stays a plain object until parsed
    with pytest.raises(ValidationError) as caught:
        parse_context(request)
    errors = [(error["loc"], error["msg"]) for error in caught.value.errors()]
    assert len(errors) == 1, errors
    assert errors[0][0] == loc, errors
    assert fragment in errors[0][1], errors
