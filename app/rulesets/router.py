"""HTTP endpoints for rule sets and their version lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app.kernel.deps import SettingsDep
from app.kernel.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    UnsupportedMediaType,
    problem,
    problem_example,
    secured,
)
from app.kernel.responses import json_response
from app.kernel.tenancy import TENANT_PATTERN
from app.rulesets.models import RuleSetVersion
from app.rulesets.schemas import (
    DOCUMENT_REF,
    ActivationResult,
    OverrideReport,
    RuleSetSummary,
    SimulationReport,
    ValidationReport,
    VersionDetail,
    VersionDiff,
    VersionSummary,
)
from app.rulesets.service import RuleSetService, etag
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

router = APIRouter(
    prefix="/v1/rule-sets", tags=["rule sets"], responses=secured(), route_class=GuardedRoute
)


async def get_rule_set_service(request: Request) -> RuleSetService:
    service: RuleSetService = request.app.state.rule_set_service
    return service


# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread.
RuleSetServiceDep = Annotated[RuleSetService, Depends(get_rule_set_service)]

Owner = Annotated[
    str,
    Path(
        pattern=TENANT_PATTERN,
        max_length=63,
        description="`shared` (every tenant reads it; the operator tenant maintains it) or your "
        "own tenant.",
        examples=["shared"],
    ),
]
OwnerQuery = Annotated[str | None, Query(pattern=TENANT_PATTERN, max_length=63)]
Key = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,63}$", description="Rule-set key.")]
MAX_VERSION = 2_147_483_647  # the column is a 32-bit integer on Postgres
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Version number.")]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=200, description="The draft's ETag.")
]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
DOCUMENT_BODY = {
    "content": {
        "application/json": {"schema": DOCUMENT_REF},
        "application/yaml": {"schema": DOCUMENT_REF},
    },
    "description": "A rule-set document as JSON or YAML (see docs/rule-sets.md).",
}
REQUIRED_DOCUMENT_BODY = DOCUMENT_BODY | {"required": True}

NO_SUCH_VERSION = problem(
    "No such version (or a draft of a shared rule set, which only the operator tenant sees).",
    problem_example(NotFound, "Rule set 'shared/iop-level-of-care' has no version 7."),
)
NOT_A_DRAFT = problem(
    "The version is not a draft: published versions never change.",
    problem_example(
        Conflict,
        "Version 1 of 'shared/iop-level-of-care' is active: only drafts can change. Create a new "
        "draft (copy_from) instead.",
    ),
)
CHANGED = problem(
    "The draft changed since it was read (the response's `ETag` is the current one).",
    problem_example(
        PreconditionFailed,
        "The draft changed since you read it; fetch it again and reapply your edit.",
    ),
)
NO_IF_MATCH = problem(
    "If-Match is missing.",
    problem_example(PreconditionRequired, "Send If-Match with the ETag of the draft you edited."),
)
NOT_JSON = problem(
    "The body is not a JSON object (or YAML), or it is empty.",
    problem_example(BadRequest, "The request body is not valid JSON.", summary="Not JSON"),
    problem_example(BadRequest, "Send a rule-set document in the body.", summary="No document"),
)
NOT_JSON_OR_YAML = problem(
    "Not JSON or YAML.",
    problem_example(
        UnsupportedMediaType, "Send the rule set as application/json or application/yaml."
    ),
)
DOES_NOT_COMPILE = problem(
    "The document does not compile: every problem is listed with its rule and position.",
    problem_example(
        Unprocessable,
        "The rule set is invalid (2 problems).",
        errors=[
            FieldProblem(pointer="#/stages", detail="the 'safety' stage is required"),
            FieldProblem(
                pointer="#/stages/0/rules/0/when",
                detail="rule 'place.iop-step-up' (stages.0.rules.0.when): column 0: unknown "
                "fact 'phq9.totl' (did you mean 'phq9.total'?)",
            ),
        ],
    ),
)
SHARED_IS_THE_OPERATORS = problem(
    "A scope is missing, or a shared rule set was written by another tenant than the operator "
    "(fork it instead).",
    problem_example(
        Forbidden,
        "Shared rule sets are maintained by the operator tenant. Fork 'iop-level-of-care' "
        "instead: POST /v1/rule-sets/clinic-a/iop-level-of-care/versions?copy_from=<version>"
        "&copy_from_owner=shared.",
        summary="Writing a shared rule set",
    ),
    problem_example(
        Forbidden,
        "This client lacks the scope this operation needs: rulesets:write.",
        summary="A missing scope",
    ),
)


def summary(row: RuleSetVersion) -> dict[str, Any]:
    return VersionSummary.model_validate(row, from_attributes=True).model_dump(mode="json")


def detail_response(row: RuleSetVersion, status_code: int = 200) -> Response:
    body = VersionDetail.model_validate(row, from_attributes=True).model_dump(mode="json")
    headers = {"ETag": etag(row)}
    if status_code == status.HTTP_201_CREATED:
        headers["Location"] = f"/v1/rule-sets/{row.owner}/{row.key}/versions/{row.version}"
    return Response(orjson.dumps(body), status_code, headers, media_type="application/json")


async def document_from(request: Request) -> str | bytes | dict[str, Any] | None:
    """The request body as a document: JSON or YAML by content type; None when empty."""
    raw = await request.body()
    if not raw.strip():
        return None
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in YAML_TYPES:
        return raw
    if content_type != "application/json":
        raise UnsupportedMediaType("Send the rule set as application/json or application/yaml.")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise BadRequest("A rule-set document is a JSON object.")
    return parsed


V = "/{owner}/{key}/versions/{version}"


@router.get(
    "",
    response_model=list[RuleSetSummary],
    summary="List rule sets",
    description="The shared rule sets and your tenant's own, with their active and latest "
    "versions: where a rule-set admin starts. The active version of a key decides new "
    "screenings; your tenant's own active version of a key (a fork) decides instead of the "
    "shared one.",
)
async def list_rule_sets(
    caller: Annotated[Caller, access(Action.RULE_SET_LIST)],
    rule_sets: RuleSetServiceDep,
) -> list[RuleSetSummary]:
    return await rule_sets.summaries(caller)


@router.get(
    "/{owner}/{key}/versions",
    operation_id="listRuleSetVersions",
    response_model=list[VersionSummary],
    summary="List the versions of a rule set",
    description="Every version of `owner/key`, newest first, with its status (draft, "
    "published, active, retired), sha256 and who created, published, activated or retired it "
    "when. Drafts of shared rule sets are listed for the operator tenant only.",
    responses={
        404: problem(
            "No such rule set.",
            problem_example(NotFound, "No rule set 'shared/iop-screening'."),
        )
    },
)
async def list_versions(
    owner: Owner,
    key: Key,
    caller: Annotated[Caller, access(Action.RULE_SET_VERSIONS)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    rows = await rule_sets.versions(caller, owner, key)
    return json_response([summary(row) for row in rows])


@router.get(
    V,
    operation_id="getRuleSetVersion",
    response_model=VersionDetail,
    summary="Get one version",
    description="The document, status, sha256 and who did what when. The `ETag` header is what "
    "`If-Match` needs to edit a draft.",
    responses={404: NO_SUCH_VERSION},
)
async def get_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_READ)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    return detail_response(await rule_sets.version(caller, owner, key, version))


@router.post(
    "/{owner}/{key}/versions",
    operation_id="createRuleSetDraft",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionDetail,
    summary="Create a draft",
    description="From a document in the body (JSON or YAML), or, with an empty body and "
    "`copy_from`, as a copy of an existing version. To fork a shared rule set, create the "
    "draft under your tenant with `copy_from=<version>&copy_from_owner=shared`. The document "
    "must compile; every problem is reported with its rule id. The draft is stored with the "
    "next version number and decides nothing until it is published and activated. Not "
    "idempotent: each call creates a version. Returns 201 with the `ETag` that `If-Match` "
    "needs to edit it.",
    openapi_extra={"requestBody": DOCUMENT_BODY},
    responses={
        400: NOT_JSON,
        403: SHARED_IS_THE_OPERATORS,
        404: problem(
            "copy_from names no version.",
            problem_example(NotFound, "Rule set 'shared/iop-level-of-care' has no version 7."),
        ),
        415: NOT_JSON_OR_YAML,
        422: DOES_NOT_COMPILE,
    },
)
async def create_draft(
    owner: Owner,
    key: Key,
    request: Request,
    caller: Annotated[Caller, access(Action.VERSION_CREATE)],
    rule_sets: RuleSetServiceDep,
    copy_from: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    copy_from_owner: OwnerQuery = None,
) -> Response:
    document = await document_from(request)
    row = await rule_sets.create_draft(caller, owner, key, document, copy_from, copy_from_owner)
    return detail_response(row, status.HTTP_201_CREATED)


@router.post(
    "/{owner}/import",
    operation_id="importRuleSet",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionDetail,
    summary="Import a document as a new draft",
    description="The document's own `key` decides the rule set of `owner` (created if new): "
    "the way to bring a rule set written and checked offline (`carelevel rules check`) into "
    "the service. The new version is a draft; validate, publish and activate it to have it "
    "decide. Not idempotent: each call creates a version.",
    openapi_extra={"requestBody": REQUIRED_DOCUMENT_BODY},
    responses={
        400: NOT_JSON,
        403: SHARED_IS_THE_OPERATORS,
        404: problem(
            "No such owner: neither `shared` nor your tenant.",
            problem_example(NotFound, "No owner 'clinic-b'."),
        ),
        415: NOT_JSON_OR_YAML,
        422: DOES_NOT_COMPILE,
    },
)
async def import_document(
    owner: Owner,
    request: Request,
    caller: Annotated[Caller, access(Action.RULE_SET_IMPORT)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    document = await document_from(request)
    if document is None:
        raise BadRequest("Send a rule-set document in the body.")
    row = await rule_sets.create_draft(caller, owner, None, document)
    return detail_response(row, status.HTTP_201_CREATED)


@router.put(
    V,
    operation_id="updateRuleSetDraft",
    response_model=VersionDetail,
    summary="Update a draft",
    description="Replace a draft's document. Requires `If-Match` with the current ETag; a "
    "published version never changes (409). The new document must compile and keep the "
    "rule set's key; the response carries the new `ETag`. Repeating the same update with the "
    "old ETag answers 412: read the draft again first.",
    openapi_extra={"requestBody": REQUIRED_DOCUMENT_BODY},
    responses={
        400: NOT_JSON,
        403: SHARED_IS_THE_OPERATORS,
        404: NO_SUCH_VERSION,
        409: NOT_A_DRAFT,
        412: CHANGED,
        422: DOES_NOT_COMPILE,
        428: NO_IF_MATCH,
    },
)
async def update_draft(
    owner: Owner,
    key: Key,
    version: Version,
    request: Request,
    caller: Annotated[Caller, access(Action.VERSION_UPDATE)],
    rule_sets: RuleSetServiceDep,
    if_match: IfMatch = None,
) -> Response:
    document = await document_from(request)
    if document is None:
        raise BadRequest("Send the new rule-set document in the body.")
    row = await rule_sets.update_draft(caller, owner, key, version, document, if_match)
    return detail_response(row)


@router.delete(
    V,
    operation_id="deleteRuleSetDraft",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a draft",
    description="Remove a draft that will not be published. Requires `If-Match` with the "
    "draft's current ETag; published, active and retired versions are never deleted (409), so "
    "every version that decided a screening stays available for replays.",
    responses={
        403: SHARED_IS_THE_OPERATORS,
        404: NO_SUCH_VERSION,
        409: NOT_A_DRAFT,
        412: CHANGED,
        428: NO_IF_MATCH,
    },
)
async def delete_draft(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_DELETE)],
    rule_sets: RuleSetServiceDep,
    if_match: IfMatch = None,
) -> Response:
    await rule_sets.delete_draft(caller, owner, key, version, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    V + "/validate",
    operation_id="validateRuleSetVersion",
    response_model=ValidationReport,
    summary="Validate and test a version",
    description="Compile it and run its test cases: problems with rule ids and positions, case "
    "results and rule coverage. `publishable` says whether it may be published. Stores "
    "nothing: run it as often as you like while editing a draft.",
    responses={404: NO_SUCH_VERSION},
)
async def validate_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_VALIDATE)],
    rule_sets: RuleSetServiceDep,
) -> ValidationReport:
    return await rule_sets.validate(caller, owner, key, version)


@router.post(
    V + "/publish",
    operation_id="publishRuleSetVersion",
    response_model=VersionDetail,
    summary="Publish a draft",
    description="Only a draft that compiles, passes every test case and fires every rule; it "
    "is immutable afterwards, and may then be activated (or pinned by screenings). The "
    "operator tenant publishes shared rule sets; a tenant publishes its own.",
    responses={
        404: NO_SUCH_VERSION,
        409: problem(
            "Not a draft.",
            problem_example(Conflict, "Version 1 of 'shared/iop-level-of-care' is already active."),
        ),
        422: problem(
            "Cases fail or rules are not covered (the validation report is included as `report`).",
            problem_example(
                Unprocessable,
                "Only a draft that compiles, passes every test case and fires every rule can be "
                "published: 1/1 cases passed, 1 rules never fire.",
                report={
                    "owner": "shared",
                    "key": "iop-depression-pilot",
                    "version": 2,
                    "compiles": True,
                    "problems": [],
                    "cases": [
                        {"name": "Depression after outpatient", "passed": True, "failures": []}
                    ],
                    "cases_passed": 1,
                    "cases_total": 1,
                    "rules_total": 2,
                    "rules_never_fired": ["safety.cssrs-high-risk"],
                    "coverage": 0.5,
                    "publishable": False,
                },
            ),
        ),
    },
)
async def publish_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_PUBLISH)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    return detail_response(await rule_sets.publish(caller, owner, key, version))


@router.post(
    V + "/activate",
    operation_id="activateRuleSetVersion",
    response_model=ActivationResult,
    summary="Activate a published version",
    description="It decides new screenings from now on; the previously active version returns "
    "to published. Activating an older version is the rollback. Every process serving the same "
    "database sees the change within `CARELEVEL_RULE_SET_REFRESH_SECONDS`. A tenant's active "
    "version of a key decides that tenant's screenings instead of the shared one. Activating "
    "the active version again changes nothing.",
    responses={
        404: NO_SUCH_VERSION,
        409: problem(
            "Not published (a draft or a retired version).",
            problem_example(
                Conflict,
                "Version 2 of 'shared/iop-level-of-care' is draft: only a published version can "
                "be activated.",
            ),
        ),
    },
)
async def activate_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_ACTIVATE)],
    rule_sets: RuleSetServiceDep,
) -> ActivationResult:
    return await rule_sets.activate(caller, owner, key, version)


@router.post(
    V + "/retire",
    operation_id="retireRuleSetVersion",
    response_model=VersionDetail,
    summary="Retire a version",
    description="A published version that is not active; it can no longer be activated or "
    "pinned for new screenings, but replays of screenings it decided still work.",
    responses={
        404: NO_SUCH_VERSION,
        409: problem(
            "Active or draft.",
            problem_example(
                Conflict,
                "Version 1 of 'shared/iop-level-of-care' is active: only a published version "
                "that is not active can be retired (activate another version first).",
            ),
        ),
    },
)
async def retire_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_RETIRE)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    return detail_response(await rule_sets.retire(caller, owner, key, version))


@router.get(
    "/{owner}/{key}/diff",
    operation_id="diffRuleSetVersions",
    response_model=VersionDiff,
    summary="Compare two versions",
    description="Rules added, removed and changed (by id), and the test cases of both versions "
    "whose outcome differs between them. `from_owner=shared` compares a fork with the shared "
    "version it came from. Read it before publishing a new version: it shows which test "
    "cases would be decided differently. With the `screenings:read` scope, each removed or "
    "changed rule also carries `overrides`: how your clinicians decided the screenings of the "
    "`from` version in which it fired (see the override report); a rule often overridden is "
    "the one whose change to check first.",
    responses={404: NO_SUCH_VERSION},
)
async def diff_versions(
    owner: Owner,
    key: Key,
    caller: Annotated[Caller, access(Action.RULE_SET_DIFF)],
    rule_sets: RuleSetServiceDep,
    settings: SettingsDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
    from_owner: OwnerQuery = None,
) -> VersionDiff:
    return await rule_sets.diff(
        caller,
        owner,
        key,
        from_version,
        to_version,
        from_owner,
        min_count=settings.override_report_min_count,
    )


@router.post(
    V + "/simulate",
    operation_id="simulateRuleSetVersion",
    response_model=SimulationReport,
    summary="Simulate a version over stored screenings",
    description="Re-evaluate your tenant's most recent stored screenings of this rule-set key "
    "under this version (a bounded sample) and count how many levels would change, from what "
    "to what. Stores nothing; the answers never leave the service (only counts and example "
    "screening ids are returned). `clinician_agreement` compares the stored and the simulated "
    "levels with the final levels your clinicians chose: a version that agrees more often "
    "follows their judgement more closely.",
    responses={404: NO_SUCH_VERSION},
)
async def simulate_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_SIMULATE)],
    rule_sets: RuleSetServiceDep,
    settings: SettingsDep,
    sample: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> SimulationReport:
    limit = min(sample or settings.simulation_sample_size, settings.simulation_sample_size)
    return await rule_sets.simulate(
        caller, owner, key, version, limit, settings.override_report_min_count
    )


@router.get(
    V + "/overrides",
    operation_id="getRuleSetVersionOverrides",
    response_model=OverrideReport,
    summary="What clinicians' overrides teach about a version",
    description="How your tenant's clinicians decided the screenings this version decided "
    "(each screening once, with its latest decision; a shared version counts your decisions "
    "only): how often the recommendation was taken, the variance reasons and the levels chosen "
    "instead when it was not (`unknown` when an EHR reported an override without the level), "
    "and, for every rule that fired, how often its screenings were overridden and how much more "
    "often than the rest (`lift`). Read it before drafting the next version: rules with a high "
    "override rate and lift are where the version and clinical judgement part; then compare "
    "the draft with `diff` and `simulate`. Figures resting on fewer screenings than "
    "`CARELEVEL_OVERRIDE_REPORT_MIN_COUNT` are null and marked `suppressed`; below it overall "
    "the whole report is withheld. No screening ids, comments or clinicians are returned.",
    responses={404: NO_SUCH_VERSION},
)
async def get_overrides(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_OVERRIDES)],
    rule_sets: RuleSetServiceDep,
    settings: SettingsDep,
) -> OverrideReport:
    return await rule_sets.overrides(
        caller, owner, key, version, settings.override_report_min_count
    )


@router.get(
    V + "/export",
    operation_id="exportRuleSetVersion",
    summary="Export a version as YAML",
    description="The version's document as YAML (a download, with the version's `ETag`): to "
    "review it, keep it under version control, edit it offline and check it with "
    "`carelevel rules check`, or import it into another carelevel.",
    response_class=Response,
    responses={
        200: {
            "description": "The document as YAML.",
            "content": {"application/yaml": {"schema": DOCUMENT_REF}},
        },
        404: NO_SUCH_VERSION,
    },
)
async def export_version(
    owner: Owner,
    key: Key,
    version: Version,
    caller: Annotated[Caller, access(Action.VERSION_EXPORT)],
    rule_sets: RuleSetServiceDep,
) -> Response:
    row, exported = await rule_sets.export(caller, owner, key, version)
    filename = f"{row.owner}-{row.key}-v{row.version}.yaml"
    return Response(
        exported,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "ETag": etag(row)},
    )
