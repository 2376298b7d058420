"""HTTP endpoints for rule sets and their version lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app.deps import ActorDep, CacheDep, SessionDep, SettingsDep
from app.errors import BadRequest, UnsupportedMediaType, problem
from app.rulesets.models import RuleSetVersion
from app.rulesets.schemas import (
    ActivationResult,
    RuleSetSummary,
    SimulationReport,
    ValidationReport,
    VersionDetail,
    VersionDiff,
    VersionSummary,
)
from app.rulesets.service import RuleSetService, etag, export_yaml

router = APIRouter(prefix="/v1/rule-sets", tags=["rule sets"])

Key = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,63}$", description="Rule-set key.")]
MAX_VERSION = 2_147_483_647  # the column is a 32-bit integer on Postgres
Version = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Version number.")]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=200, description="The draft's ETag.")
]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
DOCUMENT_BODY = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/yaml": {"schema": {"type": "string"}},
    },
    "description": "A rule-set document as JSON or YAML (see docs/rule-sets.md).",
}


def summary(row: RuleSetVersion) -> dict[str, Any]:
    return VersionSummary.model_validate(row, from_attributes=True).model_dump(mode="json")


def detail_response(row: RuleSetVersion, status_code: int = 200) -> Response:
    body = VersionDetail.model_validate(row, from_attributes=True).model_dump(mode="json")
    headers = {"ETag": etag(row)}
    if status_code == status.HTTP_201_CREATED:
        headers["Location"] = f"/v1/rule-sets/{row.key}/versions/{row.version}"
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


def rule_set_service(session: SessionDep, cache: CacheDep, actor: ActorDep) -> RuleSetService:
    return RuleSetService(session, cache, actor)


ServiceDep = Annotated[RuleSetService, Depends(rule_set_service)]


@router.get("", response_model=list[RuleSetSummary], summary="List rule sets")
async def list_rule_sets(rule_sets: ServiceDep) -> list[RuleSetSummary]:
    return await rule_sets.summaries()


@router.get(
    "/{key}/versions",
    response_model=list[VersionSummary],
    summary="List the versions of a rule set",
    responses={404: problem("No such rule set.")},
)
async def list_versions(key: Key, rule_sets: ServiceDep) -> Response:
    rows = await rule_sets.versions(key)
    return Response(orjson.dumps([summary(row) for row in rows]), media_type="application/json")


@router.get(
    "/{key}/versions/{version}",
    response_model=VersionDetail,
    summary="Get one version",
    description="The document, status, sha256 and who did what when. The `ETag` header is what "
    "`If-Match` needs to edit a draft.",
    responses={404: problem("No such version.")},
)
async def get_version(key: Key, version: Version, rule_sets: ServiceDep) -> Response:
    return detail_response(await rule_sets.version(key, version))


@router.post(
    "/{key}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionDetail,
    summary="Create a draft",
    description="From a document in the body (JSON or YAML), or, with an empty body and "
    "`copy_from`, as a copy of an existing version. The document must compile; every problem "
    "is reported with its rule id.",
    openapi_extra={"requestBody": DOCUMENT_BODY},
    responses={
        404: problem("copy_from names no version."),
        415: problem("Not JSON or YAML."),
        422: problem("The document does not compile."),
    },
)
async def create_draft(
    key: Key,
    request: Request,
    rule_sets: ServiceDep,
    copy_from: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    document = await document_from(request)
    row = await rule_sets.create_draft(key, document, copy_from)
    return detail_response(row, status.HTTP_201_CREATED)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionDetail,
    summary="Import a document as a new draft",
    description="The document's own `key` decides the rule set (created if new).",
    openapi_extra={"requestBody": DOCUMENT_BODY},
    responses={415: problem("Not JSON or YAML."), 422: problem("The document does not compile.")},
)
async def import_document(request: Request, rule_sets: ServiceDep) -> Response:
    document = await document_from(request)
    if document is None:
        raise BadRequest("Send a rule-set document in the body.")
    row = await rule_sets.create_draft(None, document)
    return detail_response(row, status.HTTP_201_CREATED)


@router.put(
    "/{key}/versions/{version}",
    response_model=VersionDetail,
    summary="Update a draft",
    description="Replace a draft's document. Requires `If-Match` with the current ETag; a "
    "published version never changes (409).",
    openapi_extra={"requestBody": DOCUMENT_BODY},
    responses={
        404: problem("No such version."),
        409: problem("The version is not a draft."),
        412: problem("The draft changed since it was read."),
        422: problem("The document does not compile."),
        428: problem("If-Match is missing."),
    },
)
async def update_draft(
    key: Key,
    version: Version,
    request: Request,
    rule_sets: ServiceDep,
    if_match: IfMatch = None,
) -> Response:
    document = await document_from(request)
    if document is None:
        raise BadRequest("Send the new rule-set document in the body.")
    row = await rule_sets.update_draft(key, version, document, if_match)
    return detail_response(row)


@router.delete(
    "/{key}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a draft",
    responses={
        404: problem("No such version."),
        409: problem("The version is not a draft."),
        412: problem("The draft changed since it was read."),
        428: problem("If-Match is missing."),
    },
)
async def delete_draft(
    key: Key, version: Version, rule_sets: ServiceDep, if_match: IfMatch = None
) -> Response:
    await rule_sets.delete_draft(key, version, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{key}/versions/{version}/validate",
    response_model=ValidationReport,
    summary="Validate and test a version",
    description="Compile it and run its test cases: problems with rule ids and positions, case "
    "results and rule coverage. `publishable` says whether it may be published.",
    responses={404: problem("No such version.")},
)
async def validate_version(key: Key, version: Version, rule_sets: ServiceDep) -> ValidationReport:
    return await rule_sets.validate(key, version)


@router.post(
    "/{key}/versions/{version}/publish",
    response_model=VersionDetail,
    summary="Publish a draft",
    description="Only a draft that compiles, passes every test case and fires every rule; it "
    "is immutable afterwards.",
    responses={
        404: problem("No such version."),
        409: problem("Not a draft."),
        422: problem("Cases fail or rules are not covered (the report is included)."),
    },
)
async def publish_version(key: Key, version: Version, rule_sets: ServiceDep) -> Response:
    return detail_response(await rule_sets.publish(key, version))


@router.post(
    "/{key}/versions/{version}/activate",
    response_model=ActivationResult,
    summary="Activate a published version",
    description="It decides new screenings from now on; the previously active version returns "
    "to published. Activating an older version is the rollback. Every process serving the same "
    "database sees the change within `CARELEVEL_RULE_SET_REFRESH_SECONDS`.",
    responses={404: problem("No such version."), 409: problem("Not published.")},
)
async def activate_version(key: Key, version: Version, rule_sets: ServiceDep) -> ActivationResult:
    return await rule_sets.activate(key, version)


@router.post(
    "/{key}/versions/{version}/retire",
    response_model=VersionDetail,
    summary="Retire a version",
    description="A published version that is not active; it can no longer be activated or "
    "pinned for new screenings, but replays of screenings it decided still work.",
    responses={404: problem("No such version."), 409: problem("Active or draft.")},
)
async def retire_version(key: Key, version: Version, rule_sets: ServiceDep) -> Response:
    return detail_response(await rule_sets.retire(key, version))


@router.get(
    "/{key}/diff",
    response_model=VersionDiff,
    summary="Compare two versions",
    description="Rules added, removed and changed (by id), and the test cases of both versions "
    "whose outcome differs between them.",
    responses={404: problem("No such version.")},
)
async def diff_versions(
    key: Key,
    rule_sets: ServiceDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> VersionDiff:
    return await rule_sets.diff(key, from_version, to_version)


@router.post(
    "/{key}/versions/{version}/simulate",
    response_model=SimulationReport,
    summary="Simulate a version over stored screenings",
    description="Re-evaluate the most recent stored screenings of this rule set under this "
    "version (a bounded sample) and count how many levels would change, from what to what.",
    responses={404: problem("No such version.")},
)
async def simulate_version(
    key: Key,
    version: Version,
    rule_sets: ServiceDep,
    settings: SettingsDep,
    sample: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> SimulationReport:
    limit = min(sample or settings.simulation_sample_size, settings.simulation_sample_size)
    return await rule_sets.simulate(key, version, limit)


@router.get(
    "/{key}/versions/{version}/export",
    summary="Export a version as YAML",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}, 404: problem("No such version.")},
)
async def export_version(key: Key, version: Version, rule_sets: ServiceDep) -> Response:
    row = await rule_sets.version(key, version)
    filename = f"{row.key}-v{row.version}.yaml"
    return Response(
        export_yaml(row),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "ETag": etag(row)},
    )
