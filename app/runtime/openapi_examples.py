"""The request and response examples of the OpenAPI document, per operation.

Requests are ones an integrator can send as they are (tests/api/test_openapi_docs.py sends
each). Responses are built by the code that answers: the determination is the shipped default
rule set's for the documented answers, the FHIR resources and CDS cards are rendered from it,
rule-set reports are run on the documented rule-set document. So the document cannot drift
from what the service says; only ids and timestamps are made up. Built once, when the OpenAPI
document is first asked for (``app.runtime.openapi.complete_openapi``).

Error examples are not here: routers name the specific ones (``app.kernel.errors.problem``,
``app.fhir.router.outcome``) and ``complete_openapi`` fills in a generic one for the rest.
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
import yaml

from app.cds_hooks.cards import Links, screening_card
from app.cds_hooks.schemas import CdsResponse
from app.cds_hooks.service import discovery
from app.engine import (
    DEFAULT_RULE_SET_KEY,
    ENGINE_VERSION,
    CompiledRuleSet,
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    determination_to_json,
    document_sha256,
    evaluate,
    parse_document,
)
from app.engine.answers import EXAMPLE_SECTIONS
from app.engine.programs import DirectoryEntry, ProgramDocument
from app.fhir.examples import example_response
from app.fhir.expansion import ExpansionRequest, expand
from app.fhir.healthcare_service import healthcare_service
from app.fhir.populate import answer_source_definition
from app.fhir.questionnaire import QuestionnaireVersion
from app.fhir.questionnaire import build_questionnaire as fhir_questionnaire
from app.fhir.response import read_response
from app.fhir.results import Result, level_observation, referral, transaction_bundle
from app.fhir.router import capability_statement, naming_system, operation_definition, searchset
from app.fhir.search import parse_search, search_bundle
from app.fhir.terminology import (
    FHIR_JSON,
    Vocabulary,
    code_system_resource,
    code_systems,
    value_set_resource,
)
from app.kernel.pagination import encode_cursor
from app.kernel.tenancy import SHARED
from app.operations.health import Readiness
from app.people.examples import people_examples
from app.programs.examples import EVENING_IOP, PROGRAM_ID, program_examples
from app.questionnaire import build_questionnaire
from app.referrals.examples import referral_examples
from app.rulesets.compiled import relabelled
from app.rulesets.models import RuleSetVersion, VersionStatus
from app.rulesets.overrides import DecidedScreening, override_figures, override_report
from app.rulesets.reports import export_yaml, validation_report, version_diff
from app.rulesets.schemas import (
    ActivationResult,
    OverrideReport,
    RuleSetSummary,
    VersionDetail,
    VersionSummary,
)
from app.screenings.asking import ask_next
from app.screenings.bodies import shown_stored, with_summary, without_trace
from app.screenings.readable import about_stored, document, html_page, markdown, plain_text
from app.screenings.representations import HTML, MARKDOWN, PLAIN
from app.screenings.schemas import PERSON_ID_EXAMPLE
from app.security.links import LinkSigner

Json = dict[str, Any]
JSON = "application/json"
YAML = "application/yaml"

BASE_URL = "https://carelevel.example.org"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")  # CARELEVEL_FHIR_CANONICAL_BASE's default
TENANT = "default"  # the operator tenant of a fresh start
ADMIN = "local admin (clk_9b1e4f20)"
RULES_ADMIN = "rules-admin (clk_5c7d2e18)"

SCREENING_ID = "7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"
OTHER_SCREENING_ID = "4bf2690c-7d08-457b-b7b2-f416be6d60c7"
DECISION_ID = "a8a1de37-51e8-46aa-96a2-1795ecb7d964"
CLIENT_ID = "b6c79ef6-0920-4d7b-97dc-909499d4ca8a"
ADMIN_CLIENT_ID = "bed409df-7c8c-4278-a0d4-0b7dca859f48"
CARD_UUID = "ced0e2bf-903a-4748-a324-f33522477a8b"  # the card app.cds_hooks.examples overrides
SUGGESTION_UUID = "0f5b8c2e-7a41-4d3b-9e6f-1c2d3e4f5a6b"
EXTERNAL_REFERENCE = "enc-2026-000123"
PERSON_ID = PERSON_ID_EXAMPLE  # a pseudonymous person id (POST /v1/screenings' person_id)
API_KEY = "clk_3fa9c2d1.8Jx0sQ0bVb6qK2mN5p7r9t1v3x5z7B9D1F3H5J7L9N1"  # ClientCreated's example

FIRST_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SCREENED_AT = datetime(2026, 12, 1, 9, 30, 12, 345678, tzinfo=UTC)
DECIDED_AT = SCREENED_AT + timedelta(minutes=14)
DRAFTED_AT = datetime(2026, 11, 20, 15, 4, 5, 123456, tzinfo=UTC)

PARTIAL_ANSWERS: Json = {
    "respondent": {"age_group": "adult", "answered_by": "self_report"},
    "presenting_concerns": ["substance_use"],
    "instruments": {"audit_c": {"items": [4, 3, 2]}},
    "supports": {"living_situation": "stable_alone"},
}

# A clinic's own small rule set, as a rule-set admin writes it: it compiles, its cases pass and
# every rule fires, so it can be published as it is.
PILOT_KEY = "iop-depression-pilot"
PILOT_DOCUMENT: Json = {
    "key": PILOT_KEY,
    "version": "2026.12.0",
    "semantics": 3,
    "title": "IOP for depression that weekly outpatient care did not help (pilot)",
    "description": "A clinic's pilot: moderate or worse depression after weekly outpatient "
    "treatment that did not help goes to an intensive outpatient program.",
    "stages": [
        {
            "stage": "safety",
            "rules": [
                {
                    "id": "safety.cssrs-high-risk",
                    "description": "High suicide risk on the C-SSRS screener.",
                    "when": 'cssrs.tier == "high"',
                    "override": {
                        "level": "emergency_evaluation",
                        "urgency": "emergent",
                        "action": "Arrange an emergency suicide-risk evaluation now.",
                    },
                    "references": ["Columbia Suicide Severity Rating Scale, screener triage"],
                }
            ],
        },
        {
            "stage": "placement",
            "default_level": "outpatient",
            "default_reason": "No placement rule fired: weekly outpatient care.",
            "rules": [
                {
                    "id": "place.iop-depression-after-outpatient",
                    "description": "Moderate or worse depression although weekly outpatient "
                    "treatment was tried.",
                    "when": "phq9.given && (phq9.total_at_least >= 10 || phq9.total >= 10) "
                    "&& treatment_history.outpatient_not_effective == true",
                    "level": "intensive_outpatient",
                    "references": [
                        "SAMHSA 2006, TIP 47: Substance Abuse: Clinical Issues in Intensive "
                        "Outpatient Treatment (step-up from outpatient care)"
                    ],
                }
            ],
        },
    ],
    "fixtures": {"adult": EXAMPLE_SECTIONS},
    "tests": [
        {
            "name": "Depression after outpatient treatment",
            "extends": "adult",
            "answers": {},
            "expect": {
                "level": "intensive_outpatient",
                "fired": ["place.iop-depression-after-outpatient"],
            },
        },
        {
            "name": "High suicide risk",
            "extends": "adult",
            "answers": {
                "instruments": {
                    "cssrs": {
                        "wish_to_be_dead": True,
                        "non_specific_active_thoughts": True,
                        "method": True,
                        "intent": True,
                        "plan_with_intent": True,
                        "behavior_lifetime": False,
                    }
                }
            },
            "expect": {
                "level": "emergency_evaluation",
                "urgency": "emergent",
                "fired": ["safety.cssrs-high-risk"],
            },
        },
    ],
}


def example(summary: str, value: Any, description: str | None = None) -> Json:
    """An OpenAPI Example object."""
    found: Json = {"summary": summary, "value": value}
    if description:
        found["description"] = description
    return found


def _wire(value: Json) -> Json:
    """``value`` as the API's JSON writes it (orjson: timestamps as ``+00:00``)."""
    wired: Json = orjson.loads(orjson.dumps(value))
    return wired


# --- screenings ---------------------------------------------------------------------------


@cache
def _default_version_1() -> CompiledRuleSet:
    """The shipped default as a fresh start stores it: version 1 of the shared rule set (the
    process's one compilation of it, relabelled)."""
    return relabelled(default_rule_set(), "1")


@cache
def _decided() -> tuple[Json, Json]:
    """The rule set used and the determination for the documented answers, as a fresh start
    decides them."""
    compiled = _default_version_1()
    determination = evaluate(compiled, ScreeningAnswers.model_validate(EXAMPLE_SECTIONS))
    return _used(compiled), orjson.loads(determination_to_json(determination))


def _used(compiled: CompiledRuleSet) -> Json:
    """The ``rule_set`` a response names when shared version 1 (``compiled``) decided."""
    return {
        "owner": SHARED,
        "key": DEFAULT_RULE_SET_KEY,
        "version": 1,
        "sha256": compiled.ref.sha256,
    }


def screening_requests() -> dict[str, Json]:
    return {
        "adult-iop-suitable": example(
            "An adult suited to IOP in a co-occurring capable program",
            {
                "answers": EXAMPLE_SECTIONS,
                "external_reference": EXTERNAL_REFERENCE,
                "person_id": PERSON_ID,
            },
            "A complete intake (examples/adult-iop-suitable.json): substance use and "
            "depression, weekly outpatient care did not help, no safety concern; an IOP fits "
            "once it is a co-occurring capable program (a condition).",
        ),
        "pinned-version": example(
            "The same answers, decided by a pinned rule-set version",
            {
                "answers": EXAMPLE_SECTIONS,
                "rule_set": {"owner": SHARED, "key": DEFAULT_RULE_SET_KEY, "version": 1},
            },
        ),
        "partial-intake": example(
            "A partial intake",
            {"answers": PARTIAL_ANSWERS},
            "Only what was asked so far (examples/insufficient-information.json): the "
            "determination lists what is missing instead of guessing.",
        ),
    }


def _decision(final_level: str, reasons: list[str], comment: str | None) -> Json:
    return {
        "id": DECISION_ID,
        "screening_id": SCREENING_ID,
        "created_at": DECIDED_AT,
        "final_level": final_level,
        "recommended_level": "intensive_outpatient",
        "matches_recommendation": final_level == "intensive_outpatient",
        "variance_reasons": reasons,
        "comment": comment,
        "decided_by": "clinician-042",
        "outcome": "decided",
        "source": "api",
    }


def _shown(body: Json, asking: list[Json] | None = None) -> Json:
    """``body`` as the API answers it: the summary beside the determination, no trace, and
    (given ``asking``) what to ask next."""
    shown = shown_stored(body["determination"])
    return _wire(with_summary(body, shown, include_trace=False, ask_next=asking))


def _partial() -> Json:
    """The evaluation of the documented partial intake: what to ask next."""
    compiled = _default_version_1()
    determination = evaluate(compiled, ScreeningAnswers.model_validate(PARTIAL_ANSWERS))
    body = {
        "rule_set": _used(compiled),
        "determination": orjson.loads(determination_to_json(determination)),
    }
    return _shown(body, ask_next(determination.missing, compiled, PARTIAL_ANSWERS))


def _screening(decision: Json | None = None) -> Json:
    rule_set, determination = _decided()
    return _shown(
        {
            "id": SCREENING_ID,
            "created_at": SCREENED_AT,
            "external_reference": EXTERNAL_REFERENCE,
            "person_id": PERSON_ID,
            "rule_set": rule_set,
            "engine_version": ENGINE_VERSION,
            "determination": determination,
            "latest_decision": decision,
        },
        [],
    )


def _readable_examples(**screening: Any) -> Json:
    """The determination of the documented answers as HTML, Markdown and plain text (of a
    stored screening when ``screening`` names its id, time and reference)."""
    rule_set, determination = _decided()
    readable = document(
        without_trace(determination), about_stored(rule_set, ENGINE_VERSION, **screening)
    )
    summary = "IOP suitable with a condition, to read"
    return {
        HTML: {"page": example(summary, html_page(readable))},
        MARKDOWN: {"markdown": example(summary, markdown(readable))},
        PLAIN: {"text": example(summary, plain_text(readable))},
    }


def _screening_examples() -> dict[tuple[str, str], Json]:
    rule_set, determination = _decided()
    accepted = _decision("intensive_outpatient", [], None)
    overridden = _decision(
        "partial_hospitalization",
        ["level_not_available"],
        "The IOP has a four-week waitlist; PHP has a place now.",
    )
    summary = {
        "id": SCREENING_ID,
        "created_at": SCREENED_AT,
        "external_reference": EXTERNAL_REFERENCE,
        "person_id": PERSON_ID,
        "rule_set": rule_set,
        "status": determination["status"],
        "level": determination["recommended_level"]["level"],
        "urgency": determination["urgency"],
        "iop_verdict": determination["iop"]["verdict"],
    }
    return {
        ("POST", "/v1/screenings"): {
            "request": {JSON: screening_requests()},
            "responses": {"201": {JSON: {"stored": example("Stored", _screening())}}},
        },
        ("POST", "/v1/screenings/evaluate"): {
            "request": {JSON: screening_requests()},
            "responses": {
                "200": {
                    JSON: {
                        "adult-iop-suitable": example(
                            "IOP suitable with a condition",
                            _shown({"rule_set": rule_set, "determination": determination}, []),
                            "What the adult-iop-suitable request answers.",
                        ),
                        "partial-intake": example(
                            "What to ask next",
                            _partial(),
                            "What the partial-intake request answers: insufficient "
                            "information, and the questions to ask next, safety first.",
                        ),
                    },
                    **_readable_examples(),
                }
            },
        },
        ("GET", "/v1/screenings"): {
            "responses": {
                "200": {
                    JSON: {
                        "page": example(
                            "A page with a next page",
                            _wire(
                                {
                                    "items": [summary],
                                    "next_cursor": encode_cursor(SCREENED_AT, SCREENING_ID),
                                }
                            ),
                        )
                    }
                }
            }
        },
        ("GET", "/v1/screenings/{screening_id}"): {
            "responses": {
                "200": {
                    JSON: {
                        "decided": example(
                            "With the clinician's decision", _screening(_wire(accepted))
                        )
                    },
                    **_readable_examples(
                        screening_id=SCREENING_ID,
                        created_at=SCREENED_AT.isoformat(),
                        external_reference=EXTERNAL_REFERENCE,
                    ),
                }
            }
        },
        ("POST", "/v1/screenings/{screening_id}/replay"): {
            "request": {
                JSON: {
                    "original": example("Under the version that decided it", {}),
                    "what-if": example("A what-if under another version", {"version": 2}),
                }
            },
            "responses": {
                "200": {
                    JSON: {
                        "identical": example(
                            "Reproduced exactly",
                            _shown(
                                {
                                    "screening_id": SCREENING_ID,
                                    "original_rule_set": rule_set,
                                    "replay_rule_set": rule_set,
                                    "what_if": False,
                                    "identical": True,
                                    "level_before": summary["level"],
                                    "level_after": summary["level"],
                                    "determination": determination,
                                }
                            ),
                        )
                    }
                }
            },
        },
        ("POST", "/v1/screenings/{screening_id}/decision"): {
            "request": {
                JSON: {
                    "accepted": example(
                        "The recommendation followed",
                        {"final_level": "intensive_outpatient", "decided_by": "clinician-042"},
                    ),
                    "overridden": example(
                        "Another level, with the reason",
                        {
                            "final_level": "partial_hospitalization",
                            "variance_reasons": ["level_not_available"],
                            "comment": overridden["comment"],
                            "decided_by": "clinician-042",
                        },
                    ),
                }
            },
            "responses": {
                "201": {
                    JSON: {
                        "accepted": example("The recommendation followed", _wire(accepted)),
                        "overridden": example("Another level", _wire(overridden)),
                    }
                }
            },
        },
        ("GET", "/v1/questionnaire"): {
            "responses": {
                "200": {
                    JSON: {
                        "questionnaire": example(
                            "The questions of the answers model",
                            build_questionnaire().model_dump(mode="json", exclude_none=True),
                        )
                    }
                }
            }
        },
    }


# --- rule sets ----------------------------------------------------------------------------


def _row(version: int, status: VersionStatus, document: Json | None = None, **fields: Any) -> Any:
    """A version as stored (never added to a session: the reports only read it)."""
    parsed = parse_document(document or PILOT_DOCUMENT)
    row = RuleSetVersion(
        id=f"2435c993-646f-47ae-bf01-1837efeefa{version:02d}",
        owner=SHARED,
        key=PILOT_KEY,
        version=version,
        status=status.value,
        title=parsed.title,
        content=parsed.model_dump(mode="json"),
        sha256=document_sha256(parsed),
        revision=1,
        parent_owner=None,
        parent_version=None,
        created_by=RULES_ADMIN,
        created_at=DRAFTED_AT,
        updated_at=DRAFTED_AT,
        published_by=None,
        published_at=None,
        activated_by=None,
        activated_at=None,
        retired_by=None,
        retired_at=None,
    )
    return _with(row, **fields)


def _with(row: Any, **fields: Any) -> Any:
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def _stricter() -> Json:
    """Version 2 of the pilot: IOP from a PHQ-9 of 15 instead of 10."""
    document = copy.deepcopy(PILOT_DOCUMENT)
    rule = document["stages"][1]["rules"][0]
    rule["when"] = rule["when"].replace(">= 10", ">= 15")
    rule["description"] = "Moderately severe or worse depression although weekly outpatient "
    rule["description"] += "treatment was tried."
    document["version"] = "2026.12.1"
    document["tests"][0]["expect"] = {"level": "outpatient"}
    document["tests"].append(
        {
            "name": "Moderately severe depression after outpatient treatment",
            "extends": "adult",
            "answers": {"instruments": {"phq9": {"items": [2, 2, 2, 2, 2, 2, 2, 1, 0]}}},
            "expect": {
                "level": "intensive_outpatient",
                "fired": ["place.iop-depression-after-outpatient"],
            },
        }
    )
    return document


def _detail(row: Any) -> Json:
    detail: Json = VersionDetail.model_validate(row, from_attributes=True).model_dump(mode="json")
    return detail


def _summary(row: Any) -> Json:
    found: Json = VersionSummary.model_validate(row, from_attributes=True).model_dump(mode="json")
    return found


def _override_report_example() -> OverrideReport:
    """The override report of the pilot's version 1 over 129 decided screenings."""
    iop, rule = "intensive_outpatient", "place.iop-depression-after-outpatient"

    def decided(count: int, final: str, reason: str | None, *rules: str) -> list[Any]:
        reasons = (reason,) if reason else ()
        return [
            DecidedScreening(
                "decided", iop, final, reasons, rules, f"{final}-{reason}-{len(rules)}-{n}"
            )
            for n in range(count)
        ]

    rows = (
        decided(70, iop, None, rule)
        + decided(20, iop, None)
        + decided(24, "partial_hospitalization", "clinical_judgment", rule)
        + decided(12, "residential", "clinical_judgment", rule)
        + decided(3, "outpatient", "waitlist", rule)
    )
    return override_report(SHARED, PILOT_KEY, 1, override_figures(rows, 10), 20_000, False)


def _rule_set_examples() -> dict[tuple[str, str], Json]:
    published_at = DRAFTED_AT + timedelta(days=1)
    activated_at = published_at + timedelta(hours=2)
    draft = _row(1, VersionStatus.DRAFT)
    published = _row(
        1, VersionStatus.PUBLISHED, published_by=RULES_ADMIN, published_at=published_at
    )
    active = _row(
        1,
        VersionStatus.ACTIVE,
        published_by=RULES_ADMIN,
        published_at=published_at,
        activated_by=RULES_ADMIN,
        activated_at=activated_at,
    )
    version_2 = _row(
        2,
        VersionStatus.DRAFT,
        _stricter(),
        parent_owner=SHARED,
        parent_version=1,
        created_at=activated_at + timedelta(days=3),
    )
    retired = _row(
        1,
        VersionStatus.RETIRED,
        published_by=RULES_ADMIN,
        published_at=published_at,
        activated_by=RULES_ADMIN,
        activated_at=activated_at,
        retired_by=RULES_ADMIN,
        retired_at=activated_at + timedelta(days=30),
    )
    default = default_rule_set().document
    document_examples = {
        JSON: {"pilot": example("A clinic's pilot rule set", PILOT_DOCUMENT)},
        YAML: {
            "pilot": example(
                "The same, as YAML", yaml.safe_dump(PILOT_DOCUMENT, sort_keys=False, width=100)
            )
        },
    }
    compiled_1 = compile_rule_set(draft.content, version="1")
    compiled_2 = compile_rule_set(version_2.content, version="2")
    diff = version_diff(PILOT_KEY, active, compiled_1, version_2, compiled_2)
    versions = "/v1/rule-sets/{owner}/{key}/versions"
    version = versions + "/{version}"
    return {
        ("GET", "/v1/rule-sets"): {
            "responses": {
                "200": {
                    JSON: {
                        "rule-sets": example(
                            "The shipped default and a pilot",
                            [
                                RuleSetSummary(
                                    owner=SHARED,
                                    key=DEFAULT_RULE_SET_KEY,
                                    title=default.title,
                                    active_version=1,
                                    latest_version=1,
                                    versions=1,
                                ).model_dump(mode="json"),
                                RuleSetSummary(
                                    owner=SHARED,
                                    key=PILOT_KEY,
                                    title=draft.title,
                                    active_version=1,
                                    latest_version=2,
                                    versions=2,
                                ).model_dump(mode="json"),
                            ],
                        )
                    }
                }
            }
        },
        ("GET", versions): {
            "responses": {
                "200": {
                    JSON: {
                        "versions": example(
                            "An active version and a new draft",
                            [_summary(version_2), _summary(active)],
                        )
                    }
                }
            }
        },
        ("POST", versions): {
            "request": document_examples,
            "responses": {"201": {JSON: {"draft": example("The new draft", _detail(draft))}}},
        },
        ("POST", "/v1/rule-sets/{owner}/import"): {
            "request": document_examples,
            "responses": {"201": {JSON: {"draft": example("The new draft", _detail(draft))}}},
        },
        ("GET", version): {
            "responses": {"200": {JSON: {"active": example("Active", _detail(active))}}}
        },
        ("PUT", version): {
            "request": document_examples,
            "responses": {
                "200": {
                    JSON: {
                        "draft": example("The draft, updated", _detail(_with(draft, revision=2)))
                    }
                }
            },
        },
        ("POST", version + "/validate"): {
            "responses": {
                "200": {
                    JSON: {
                        "publishable": example(
                            "Compiles, every case passes, every rule fires",
                            validation_report(draft).model_dump(mode="json"),
                        )
                    }
                }
            }
        },
        ("POST", version + "/publish"): {
            "responses": {"200": {JSON: {"published": example("Published", _detail(published))}}}
        },
        ("POST", version + "/activate"): {
            "responses": {
                "200": {
                    JSON: {
                        "activated": example(
                            "Version 2 decides from now on",
                            ActivationResult(
                                owner=SHARED,
                                key=PILOT_KEY,
                                version=2,
                                status=VersionStatus.ACTIVE,
                                previous_active_version=1,
                            ).model_dump(mode="json"),
                        )
                    }
                }
            }
        },
        ("POST", version + "/retire"): {
            "responses": {"200": {JSON: {"retired": example("Retired", _detail(retired))}}}
        },
        ("GET", "/v1/rule-sets/{owner}/{key}/diff"): {
            "responses": {
                "200": {
                    JSON: {
                        "stricter": example(
                            "A stricter threshold in version 2",
                            diff.model_dump(mode="json"),
                        )
                    }
                }
            }
        },
        ("POST", version + "/simulate"): {
            "responses": {
                "200": {
                    JSON: {
                        "simulated": example(
                            "23 of 500 recent screenings would get another level",
                            {
                                "owner": SHARED,
                                "key": PILOT_KEY,
                                "version": 2,
                                "screenings_considered": 500,
                                "changed": 23,
                                "unchanged": 477,
                                "transitions": [
                                    {
                                        "from_level": "intensive_outpatient",
                                        "to_level": "intensive_outpatient",
                                        "count": 181,
                                        "example_screening_ids": [SCREENING_ID],
                                    },
                                    {
                                        "from_level": "intensive_outpatient",
                                        "to_level": "outpatient",
                                        "count": 23,
                                        "example_screening_ids": [OTHER_SCREENING_ID],
                                    },
                                    {
                                        "from_level": "outpatient",
                                        "to_level": "outpatient",
                                        "count": 296,
                                        "example_screening_ids": [],
                                    },
                                ],
                                "urgency_changes": [],
                                "verdict_changes": [
                                    {
                                        "before": "suitable",
                                        "after": "lower_level_sufficient",
                                        "count": 23,
                                        "example_screening_ids": [OTHER_SCREENING_ID],
                                    }
                                ],
                                "sample_limit": 500,
                                "clinician_agreement": {
                                    "decided": 120,
                                    "agreed_stored": 96,
                                    "agreed_simulated": 100,
                                    "excluded_unknown_level": 15,
                                    "min_count": 10,
                                    "count_granularity": 5,
                                    "suppressed": False,
                                },
                            },
                        )
                    }
                }
            }
        },
        ("GET", version + "/overrides"): {
            "responses": {
                "200": {
                    JSON: {
                        "overrides": example(
                            "Clinicians overrode 39 of 129 recommendations",
                            _override_report_example().model_dump(mode="json"),
                            "Most overrides chose partial hospitalization where the pilot's IOP "
                            "rule fired. Three overrides to outpatient care for a waitlist are "
                            "too few to show (minimum 10), and so are the residential ones, "
                            "which would give them away by subtraction.",
                        )
                    }
                }
            }
        },
        ("GET", version + "/export"): {
            "responses": {"200": {YAML: {"active": example("Version 1", export_yaml(active))}}}
        },
    }


# --- clients and audit --------------------------------------------------------------------


def _client(**fields: Any) -> Json:
    client = {
        "id": CLIENT_ID,
        "tenant": TENANT,
        "name": "intake-web",
        "key_prefix": "clk_3fa9c2d1",
        "scopes": ["screenings:write", "screenings:read"],
        "created_at": FIRST_START + timedelta(days=1),
        "created_by": ADMIN,
        "revoked_at": None,
        "revoked_by": None,
        "last_used_at": SCREENED_AT,
    }
    return _wire(client | fields)


def _audit_event(event_id: str, minutes: int, action: str, resource: str, **fields: Any) -> Json:
    event = {
        "id": event_id,
        "recorded_at": SCREENED_AT + timedelta(minutes=minutes),
        "tenant": TENANT,
        "client_id": CLIENT_ID,
        "subject": None,
        "action": action,
        "resource_type": resource,
        "resource_id": SCREENING_ID,
        "outcome": 200,
        "request_id": "cee331d1-5505-47df-a58b-4f91e0bc9e5c",
        "source_ip": "10.0.4.17",
        "details": {},
    }
    return _wire(event | fields)


def _client_examples() -> dict[tuple[str, str], Json]:
    revoked = _client(revoked_at=SCREENED_AT + timedelta(days=2), revoked_by=ADMIN)
    events = [
        _audit_event(
            "5af8ac3c-ad00-49df-a746-6b2108ae4999",
            20,
            "screening.decide",
            "screening",
            outcome=201,
            details={"decision_id": DECISION_ID},
        ),
        _audit_event("f1e41953-3b17-4b74-83d0-3960856c2a17", 2, "screening.read", "screening"),
    ]
    return {
        ("POST", "/v1/clients"): {
            "request": {
                JSON: {
                    "intake-app": example(
                        "An intake app that screens and reads its screenings",
                        {"name": "intake-web", "scopes": ["screenings:write", "screenings:read"]},
                    )
                }
            },
            "responses": {
                "201": {
                    JSON: {
                        "created": example(
                            "Created, with its key (shown this once)",
                            _client(last_used_at=None) | {"api_key": API_KEY},
                        )
                    }
                }
            },
        },
        ("GET", "/v1/clients"): {
            "responses": {
                "200": {
                    JSON: {
                        "page": example(
                            "The last page",
                            {
                                "items": [
                                    _client(
                                        id=ADMIN_CLIENT_ID,
                                        name="local admin",
                                        key_prefix="clk_9b1e4f20",
                                        scopes=[
                                            "screenings:write",
                                            "screenings:read",
                                            "rulesets:read",
                                            "rulesets:write",
                                            "rulesets:publish",
                                            "audit:read",
                                            "admin",
                                            "metrics:read",
                                            "programs:read",
                                            "programs:write",
                                        ],
                                        created_at=FIRST_START,
                                        created_by="carelevel first start",
                                    ),
                                    _client(),
                                ],
                                "next_cursor": None,
                            },
                        )
                    }
                }
            }
        },
        ("GET", "/v1/clients/{client_id}"): {
            "responses": {"200": {JSON: {"client": example("An intake app", _client())}}}
        },
        ("POST", "/v1/clients/{client_id}/revoke"): {
            "responses": {"200": {JSON: {"revoked": example("Revoked", revoked)}}}
        },
        ("GET", "/v1/audit-events"): {
            "responses": {
                "200": {
                    JSON: {
                        "page": example(
                            "A page with a next page",
                            {
                                "items": events,
                                "next_cursor": encode_cursor(
                                    SCREENED_AT + timedelta(minutes=2),
                                    "f1e41953-3b17-4b74-83d0-3960856c2a17",
                                ),
                            },
                        )
                    }
                }
            }
        },
    }


# --- FHIR and CDS Hooks -------------------------------------------------------------------


@cache
def fhir_result() -> Result:
    """The stored screening of the documented QuestionnaireResponse."""
    read = read_response(example_response(VOCABULARY), VOCABULARY)
    determination = evaluate(_default_version_1(), ScreeningAnswers.model_validate(read.answers))
    rule_set, _ = _decided()
    return Result(
        screening_id=SCREENING_ID,
        created_at=SCREENED_AT,
        rule_set=rule_set,
        engine_version=ENGINE_VERSION,
        determination=orjson.loads(determination_to_json(determination)),
        context=read.context,
    )


def _fhir_questionnaire() -> Json:
    """The Questionnaire of the shipped default, with its first two sections only (the whole
    is about 80 KB)."""
    questionnaire = fhir_questionnaire(
        VOCABULARY,
        QuestionnaireVersion(
            owner=SHARED,
            key=DEFAULT_RULE_SET_KEY,
            version=1,
            title=default_rule_set().document.title,
            status="active",
            date=FIRST_START,
            sha256=default_rule_set().ref.sha256,
        ),
    )
    questionnaire["item"] = questionnaire["item"][:2]
    return questionnaire


def _fhir(value: Json, summary: str, name: str = "resource") -> Json:
    return {FHIR_JSON: {name: example(summary, value)}}


def _fhir_examples() -> dict[tuple[str, str], Json]:
    result = fhir_result()
    questionnaire = _fhir_questionnaire()
    specs = code_systems()
    level_system = code_system_resource(VOCABULARY, specs["level-of-care"])
    level_values = value_set_resource(VOCABULARY, specs["level-of-care"])
    service_request = referral(VOCABULARY, result)
    assert service_request is not None  # the documented response names its subject
    shortened = "The Questionnaire (its first two sections only)"
    return {
        ("GET", "/fhir/r4/metadata"): {
            "responses": {
                "200": _fhir(
                    capability_statement(VOCABULARY, BASE_URL, SCREENED_AT.date().isoformat()),
                    "The CapabilityStatement",
                )
            }
        },
        ("GET", "/fhir/r4/Questionnaire/{questionnaire_id}"): {
            "responses": {"200": _fhir(questionnaire, shortened)}
        },
        ("GET", "/fhir/r4/Questionnaire/{questionnaire_id}/_history/{version_id}"): {
            "responses": {"200": _fhir(questionnaire, shortened)}
        },
        ("GET", "/fhir/r4/Questionnaire"): {
            "responses": {
                "200": _fhir(searchset(BASE_URL, [questionnaire]), "One match (shortened)")
            }
        },
        ("POST", "/fhir/r4/QuestionnaireResponse/$evaluate"): {
            "responses": {
                "200": _fhir(
                    transaction_bundle(VOCABULARY, result),
                    "The result: level-of-care Observation, scores, proposed referral",
                )
            }
        },
        ("GET", "/fhir/r4/Observation/{observation_id}"): {
            "responses": {
                "200": _fhir(level_observation(VOCABULARY, result), "The level-of-care result")
            }
        },
        ("GET", "/fhir/r4/ServiceRequest/{service_request_id}"): {
            "responses": {"200": _fhir(service_request, "A proposed referral to IOP")}
        },
        ("GET", "/fhir/r4/CodeSystem/{code_system_id}"): {
            "responses": {"200": _fhir(level_system, "The levels of care")}
        },
        ("GET", "/fhir/r4/CodeSystem"): {
            "responses": {"200": _fhir(searchset(BASE_URL, [level_system]), "Search by url")}
        },
        ("GET", "/fhir/r4/ValueSet/{value_set_id}"): {
            "responses": {"200": _fhir(level_values, "Every level of care")}
        },
        ("GET", "/fhir/r4/ValueSet"): {
            "responses": {"200": _fhir(searchset(BASE_URL, [level_values]), "Search by url")}
        },
        ("GET", "/fhir/r4/OperationDefinition/{operation_id}"): {
            "responses": {"200": _fhir(operation_definition(VOCABULARY), "$evaluate")}
        },
        **_fhir_search_examples(result, service_request),
        **_fhir_program_examples(),
    }


def _fhir_program_examples() -> dict[tuple[str, str], Json]:
    """The documented program (/v1/programs) read and searched as a HealthcareService."""
    program = ProgramDocument.model_validate(EVENING_IOP)
    entry = DirectoryEntry(id=PROGRAM_ID, version=1, program=program)
    service = healthcare_service(VOCABULARY, entry, retired=False)
    return {
        ("GET", "/fhir/r4/HealthcareService/{program_id}"): {
            "responses": {"200": _fhir(service, "An evening IOP")}
        },
        ("GET", "/fhir/r4/HealthcareService"): {
            "responses": {
                "200": _fhir(searchset(BASE_URL, [service]), "The directory's one program")
            }
        },
    }


def _fhir_search_examples(result: Result, service_request: Json) -> dict[tuple[str, str], Json]:
    """Searches by patient, expansions and naming systems."""
    subject = [("subject", "Patient/1288992")]
    by_code = [*subject, ("code", f"{VOCABULARY.observations}|level-of-care-recommendation")]
    observations = parse_search("Observation", by_code, strict=False)
    referrals = parse_search("ServiceRequest", subject, strict=False)
    level_values = code_systems()["level-of-care"]
    expansion = expand(
        VOCABULARY,
        level_values,
        ExpansionRequest(count=3),
        SCREENED_AT.isoformat(timespec="seconds"),
    )
    expansion["expansion"]["identifier"] = "urn:uuid:5b0f7c55-7e4b-4b8a-9c61-3f0a1d2e4b6c"
    named = naming_system(VOCABULARY, "screening-id", SCREENED_AT.date().isoformat())
    answer_source = answer_source_definition(VOCABULARY)
    return {
        ("GET", "/fhir/r4/Observation"): {
            "responses": {
                "200": _fhir(
                    search_bundle(
                        BASE_URL, observations, [level_observation(VOCABULARY, result)], None
                    ),
                    "The patient's level-of-care results",
                )
            }
        },
        ("GET", "/fhir/r4/ServiceRequest"): {
            "responses": {
                "200": _fhir(
                    search_bundle(BASE_URL, referrals, [service_request], None),
                    "The patient's proposed referrals",
                )
            }
        },
        ("GET", "/fhir/r4/ValueSet/{value_set_id}/$expand"): {
            "responses": {"200": _fhir(expansion, "The first three levels of care")}
        },
        ("GET", "/fhir/r4/ValueSet/$expand"): {
            "responses": {"200": _fhir(expansion, "The first three levels of care")}
        },
        ("GET", "/fhir/r4/NamingSystem/{naming_system_id}"): {
            "responses": {"200": _fhir(named, "Screening ids")}
        },
        ("GET", "/fhir/r4/NamingSystem"): {
            "responses": {"200": _fhir(searchset(BASE_URL, [named]), "Search by value")}
        },
        ("GET", "/fhir/r4/StructureDefinition/{structure_definition_id}"): {
            "responses": {"200": _fhir(answer_source, "The answer-source extension")}
        },
        ("GET", "/fhir/r4/StructureDefinition"): {
            "responses": {"200": _fhir(searchset(BASE_URL, [answer_source]), "Search by url")}
        },
    }


def _cds_examples() -> dict[tuple[str, str], Json]:
    # A link signed for the example's client at the time of the example (with a key that signs
    # nothing else): the document shows the shape of a real one.
    signer = LinkSigner(b"the OpenAPI example's own signing key", 900)
    view_query = functools.partial(
        signer.sign, tenant="clinic-a", client_id="cds:ehr-a", now=SCREENED_AT.timestamp()
    )
    card = screening_card(VOCABULARY, Links(BASE_URL, view_query), fhir_result())
    card.uuid = CARD_UUID
    for suggestion in card.suggestions or []:
        suggestion.uuid = SUGGESTION_UUID
    return {
        ("GET", "/cds-services"): {
            "responses": {
                "200": {
                    JSON: {"services": example("Both services", discovery(VOCABULARY).to_wire())}
                }
            }
        },
        ("POST", "/cds-services/{service_id}"): {
            "responses": {
                "200": {
                    JSON: {
                        "screening": example(
                            "The card of the patient's screening",
                            CdsResponse(cards=[card]).to_wire(),
                        )
                    }
                }
            }
        },
    }


def _operations_examples() -> dict[tuple[str, str], Json]:
    checks = Readiness.model_fields["checks"].examples
    assert checks
    return {
        ("GET", "/readyz"): {
            "responses": {
                "200": {JSON: {"ready": example("Ready", {"status": "ready", "checks": checks[0]})}}
            }
        }
    }


def operation_examples() -> dict[tuple[str, str], Json]:
    """Per (METHOD, path): ``request`` examples by media type and ``responses`` examples by
    status and media type (Example objects by name). A fresh copy each time."""
    return copy.deepcopy(_all_examples())


@cache
def _all_examples() -> dict[tuple[str, str], Json]:
    return (
        _screening_examples()
        | _rule_set_examples()
        | _client_examples()
        | people_examples()
        | program_examples()
        | _fhir_examples()
        | _cds_examples()
        | _operations_examples()
        | referral_examples()
    )
