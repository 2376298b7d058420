"""Rule-set use cases: drafts, validation, the publish/activate/retire lifecycle, diff, simulate.

Lifecycle: draft (editable with If-Match) → published (immutable) → active (exactly one per key,
enforced by a partial unique index) → retired. Activating an older published version is the
rollback; the version it replaces goes back to published.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, utcnow
from app.engine import (
    DEFAULT_RULE_SET_KEY,
    RuleSetError,
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    document_sha256,
    evaluate,
    parse_document,
    run_tests,
)
from app.engine.compiler import CompiledRuleSet
from app.engine.ruleset import RuleSetDocument
from app.engine.testing import case_answers
from app.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from app.rulesets.cache import RuleSetCache, VersionRef
from app.rulesets.models import RuleSet, RuleSetEvent, RuleSetVersion, VersionStatus
from app.rulesets.repository import RuleSetRepository
from app.rulesets.schemas import (
    ActivationResult,
    CaseDifference,
    CaseOutcome,
    LevelTransition,
    RuleChange,
    RuleSetProblemOut,
    RuleSetSummary,
    SimulationReport,
    ValidationReport,
    VersionDiff,
)

SYSTEM_ACTOR = "system"


def etag(row: RuleSetVersion) -> str:
    """The entity tag of a version: changes whenever a draft is saved."""
    return f'"{row.id}.{row.revision}"'


def _problems(error: RuleSetError) -> list[FieldProblem]:
    return [
        FieldProblem(
            pointer="#/" + problem.location.replace(".", "/"),
            detail=str(problem) if problem.rule_id else problem.message,
        )
        for problem in error.problems
    ]


# libyaml when installed: the pure-Python loader takes about half a second for the shipped set.
def parse_and_compile(source: str | bytes | Mapping[str, Any]) -> tuple[RuleSetDocument, str]:
    """Parse and compile a document; a document that does not compile is rejected (422)."""
    try:
        document = parse_document(source)
        compile_rule_set(document)
    except RuleSetError as error:
        raise Unprocessable(
            f"The rule set is invalid ({len(error.problems)} problems).",
            errors=_problems(error),
        ) from None
    return document, document_sha256(document)


class RuleSetService:
    def __init__(self, session: AsyncSession, cache: RuleSetCache, actor: str) -> None:
        self.session = session
        self.repository = RuleSetRepository(session)
        self.cache = cache
        self.actor = actor

    # --- reading ---------------------------------------------------------------------------

    async def summaries(self) -> list[RuleSetSummary]:
        by_key: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for key, number, status, title in await self.repository.version_overview():
            by_key[key].append((number, status, title))
        result = []
        for rule_set in await self.repository.rule_sets():
            versions = by_key.get(rule_set.key, [])
            active = next((v for v in versions if v[1] == VersionStatus.ACTIVE), None)
            result.append(
                RuleSetSummary(
                    key=rule_set.key,
                    title=versions[0][2] if versions else rule_set.key,
                    active_version=active[0] if active else None,
                    latest_version=versions[0][0] if versions else 0,
                    versions=len(versions),
                )
            )
        return result

    async def versions(self, key: str) -> list[RuleSetVersion]:
        """The versions of ``key`` (without content), newest first; empty when its only
        drafts were deleted."""
        versions = await self.repository.versions(key)
        if not versions and await self.repository.rule_set(key) is None:
            raise NotFound(f"No rule set with key '{key}'.")
        return list(versions)

    async def version(self, key: str, version: int) -> RuleSetVersion:
        row = await self.repository.version(key, version)
        if row is None:
            raise NotFound(f"Rule set '{key}' has no version {version}.")
        return row

    async def compiled(self, key: str, version: int) -> tuple[RuleSetVersion, CompiledRuleSet]:
        row = await self.version(key, version)
        try:
            return row, self.cache.compiled(row)
        except RuleSetError as error:  # only drafts saved before a compiler change
            raise Unprocessable("The version does not compile.", errors=_problems(error)) from None

    # --- drafts ----------------------------------------------------------------------------

    async def create_draft(
        self,
        key: str | None,
        source: str | bytes | Mapping[str, Any] | None,
        copy_from: int | None = None,
    ) -> RuleSetVersion:
        """A new draft from a document, or a copy of an existing version of ``key``."""
        if source is None:
            if key is None or copy_from is None:
                raise Unprocessable("Give a rule-set document, or copy_from with a version.")
            parent = await self.version(key, copy_from)
            document, sha = parse_and_compile(parent.content)
        else:
            document, sha = parse_and_compile(source)
        if key is not None and document.key != key:
            raise Unprocessable(
                f"The document's key '{document.key}' does not match the URL key '{key}'.",
                errors=[FieldProblem(pointer="#/key", detail="must match the rule-set key")],
            )
        rule_set = await self._lock_or_create(document.key)
        number = await self.repository.next_version_number(rule_set)
        now = utcnow()
        row = RuleSetVersion(
            rule_set_id=rule_set.id,
            key=document.key,
            version=number,
            status=VersionStatus.DRAFT,
            title=document.title,
            content=document.model_dump(mode="json"),
            sha256=sha,
            revision=1,
            parent_version=copy_from,
            created_by=self.actor,
            created_at=now,
            updated_at=now,
        )
        self.repository.add(row)
        await self.session.flush()
        self._event(row, "create_draft", {"parent_version": copy_from})
        return row

    async def update_draft(
        self, key: str, version: int, source: str | bytes | Mapping[str, Any], if_match: str | None
    ) -> RuleSetVersion:
        row = await self._draft_for_change(key, version, if_match)
        document, sha = parse_and_compile(source)
        if document.key != key:
            raise Unprocessable(
                f"The document's key '{document.key}' does not match the URL key '{key}'.",
                errors=[FieldProblem(pointer="#/key", detail="must match the rule-set key")],
            )
        row.content = document.model_dump(mode="json")
        row.title = document.title
        row.sha256 = sha
        row.revision += 1
        row.updated_at = utcnow()
        self._event(row, "update_draft", {"revision": row.revision})
        await self.session.flush()
        return row

    async def delete_draft(self, key: str, version: int, if_match: str | None) -> None:
        row = await self._draft_for_change(key, version, if_match)
        self._event(row, "delete_draft", {})
        await self.session.flush()
        await self.repository.delete(row)
        await self.session.flush()

    async def _draft_for_change(
        self, key: str, version: int, if_match: str | None
    ) -> RuleSetVersion:
        await self._lock(key)
        row = await self.version(key, version)
        if row.status != VersionStatus.DRAFT:
            raise Conflict(
                f"Version {version} of '{key}' is {row.status}: only drafts can change. "
                "Create a new draft (copy_from) instead."
            )
        if if_match is None:
            raise PreconditionRequired("Send If-Match with the ETag of the draft you edited.")
        if if_match.strip() not in (etag(row), "*"):
            raise PreconditionFailed(
                "The draft changed since you read it; fetch it again and reapply your edit.",
                headers={"ETag": etag(row)},
            )
        return row

    # --- validation and lifecycle -----------------------------------------------------------

    async def validate(self, key: str, version: int) -> ValidationReport:
        row = await self.version(key, version)
        return validation_report(row)

    async def publish(self, key: str, version: int) -> RuleSetVersion:
        await self._lock(key)
        row = await self.version(key, version)
        if row.status != VersionStatus.DRAFT:
            raise Conflict(f"Version {version} of '{key}' is already {row.status}.")
        report = validation_report(row)
        if not report.publishable:
            raise Unprocessable(
                "Only a draft that compiles, passes every test case and fires every rule can "
                f"be published: {report.cases_passed}/{report.cases_total} cases passed, "
                f"{len(report.rules_never_fired)} rules never fire.",
                extra={"report": report.model_dump(mode="json")},
            )
        row.status = VersionStatus.PUBLISHED
        row.published_by, row.published_at = self.actor, utcnow()
        self._event(row, "publish", {"sha256": row.sha256})
        await self.session.flush()
        return row

    async def activate(self, key: str, version: int) -> ActivationResult:
        rule_set = await self._lock(key)
        row = await self.version(key, version)
        if row.status == VersionStatus.ACTIVE:
            return ActivationResult(
                key=key, version=version, status=VersionStatus.ACTIVE, previous_active_version=None
            )
        if row.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Version {version} of '{key}' is {row.status}: only a published version can be "
                "activated."
            )
        previous = await self.repository.active_version_number(rule_set.id)
        await self.repository.demote_active(rule_set.id)
        row.status = VersionStatus.ACTIVE
        row.activated_by, row.activated_at = self.actor, utcnow()
        self._event(row, "activate", {"previous_active_version": previous})
        try:
            await self.session.flush()
        except IntegrityError:
            raise Conflict(
                "Another activation of this rule set happened at the same time; retry.",
                headers={"Retry-After": "1"},
            ) from None
        ref, compiled = VersionRef(row.id, key, version), self.cache.compiled(row)
        after_commit(self.session, lambda: self.cache.set_active(ref, compiled))
        return ActivationResult(
            key=key,
            version=version,
            status=VersionStatus.ACTIVE,
            previous_active_version=previous,
        )

    async def retire(self, key: str, version: int) -> RuleSetVersion:
        await self._lock(key)
        row = await self.version(key, version)
        if row.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Version {version} of '{key}' is {row.status}: only a published version that is "
                "not active can be retired (activate another version first)."
            )
        row.status = VersionStatus.RETIRED
        row.retired_by, row.retired_at = self.actor, utcnow()
        self._event(row, "retire", {})
        await self.session.flush()
        return row

    async def _lock(self, key: str) -> RuleSet:
        """Lock a rule set before changing any of its versions.

        Changes to one rule set (edit, delete, publish, activate, retire, new drafts) then run
        one at a time, each reading what the previous one committed: a draft cannot be edited
        after it was published, nor an active version retired (see
        ``RuleSetRepository.rule_set`` for how Postgres and SQLite lock).
        """
        rule_set = await self.repository.rule_set(key, lock=True)
        if rule_set is None:
            raise NotFound(f"No rule set with key '{key}'.")
        return rule_set

    async def _lock_or_create(self, key: str) -> RuleSet:
        """Lock the rule set ``key``, creating it first when it is new (a concurrent creation of
        the same key wins, and this one locks the row it created)."""
        rule_set = await self.repository.rule_set(key, lock=True)
        if rule_set is not None:
            return rule_set
        try:
            async with self.session.begin_nested():
                return await self.repository.add_rule_set(key)
        except IntegrityError:
            return await self._lock(key)

    # --- comparison --------------------------------------------------------------------------

    async def diff(self, key: str, from_version: int, to_version: int) -> VersionDiff:
        before_row, before = await self.compiled(key, from_version)
        after_row, after = await self.compiled(key, to_version)
        return version_diff(key, before_row, before, after_row, after)

    async def simulate(self, key: str, version: int, sample: int) -> SimulationReport:
        from app.screenings.models import Screening  # screenings depend on rule sets, not back

        row, compiled = await self.compiled(key, version)
        query = (
            select(Screening.id, Screening.answers, Screening.level)
            .where(Screening.rule_set_key == key)
            .order_by(Screening.created_at.desc(), Screening.id.desc())
            .limit(sample)
        )
        rows = (await self.session.execute(query)).all()
        transitions: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
        changed = 0
        for screening_id, answers, level in rows:
            result = evaluate(compiled, ScreeningAnswers.model_validate(answers))
            new_level = result.recommended_level.level.value if result.recommended_level else None
            if new_level != level:
                changed += 1
            transitions[(level, new_level)].append(screening_id)
        return SimulationReport(
            key=key,
            version=row.version,
            screenings_considered=len(rows),
            changed=changed,
            unchanged=len(rows) - changed,
            transitions=[
                LevelTransition(
                    from_level=before,
                    to_level=after,
                    count=len(ids),
                    example_screening_ids=ids[:5],
                )
                for (before, after), ids in sorted(
                    transitions.items(), key=lambda item: (-len(item[1]), str(item[0]))
                )
            ],
            sample_limit=sample,
        )

    # --- seeding -----------------------------------------------------------------------------

    async def ensure_default(self) -> None:
        """On a fresh database, load, publish and activate the shipped default rule set."""
        if await self.repository.rule_set(DEFAULT_RULE_SET_KEY) is not None:
            return
        await self._lock_or_create(DEFAULT_RULE_SET_KEY)
        if await self.repository.versions(DEFAULT_RULE_SET_KEY):
            return  # another process seeded it meanwhile
        # The engine keeps the shipped document parsed once per process; parsing its YAML
        # again on every start costs far more than validating the parsed document.
        row = await self.create_draft(None, default_rule_set().document.model_dump(mode="json"))
        await self.publish(row.key, row.version)
        await self.activate(row.key, row.version)

    def _event(self, row: RuleSetVersion, action: str, details: dict[str, Any]) -> None:
        self.repository.add(
            RuleSetEvent(
                rule_set_version_id=row.id,
                key=row.key,
                version=row.version,
                action=action,
                actor=self.actor,
                at=utcnow(),
                details=details,
            )
        )


def validation_report(row: RuleSetVersion) -> ValidationReport:
    """Compile a stored version and run its test cases (pure; no database access)."""
    try:
        compiled = compile_rule_set(row.content, version=str(row.version))
    except RuleSetError as error:
        return ValidationReport(
            key=row.key,
            version=row.version,
            compiles=False,
            problems=[
                RuleSetProblemOut(rule_id=p.rule_id, location=p.location, message=p.message)
                for p in error.problems
            ],
            cases=[],
            cases_passed=0,
            cases_total=0,
            rules_total=0,
            rules_never_fired=[],
            coverage=0.0,
            publishable=False,
        )
    report = run_tests(compiled)
    passed = sum(1 for case in report.cases if case.passed)
    return ValidationReport(
        key=row.key,
        version=row.version,
        compiles=True,
        problems=[],
        cases=[
            CaseOutcome(name=case.name, passed=case.passed, failures=list(case.failures))
            for case in report.cases
        ],
        cases_passed=passed,
        cases_total=len(report.cases),
        rules_total=len(report.rules),
        rules_never_fired=list(report.never_fired),
        coverage=report.coverage,
        publishable=report.passed,
    )


def _rules_by_id(content: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        rule["id"]: (stage["stage"], rule)
        for stage in content.get("stages", [])
        for rule in stage.get("rules", [])
    }


def _outcome(compiled: CompiledRuleSet, answers: ScreeningAnswers) -> dict[str, Any]:
    result = evaluate(compiled, answers)
    return {
        "level": result.recommended_level.level.value if result.recommended_level else None,
        "urgency": result.urgency.value,
        "status": result.status.value,
        "iop": result.iop.verdict.value,
        "barriers": sorted(b.code for b in result.barriers),
    }


def version_diff(
    key: str,
    before_row: RuleSetVersion,
    before: CompiledRuleSet,
    after_row: RuleSetVersion,
    after: CompiledRuleSet,
) -> VersionDiff:
    """Rules added, removed and changed, and how the two versions' test cases behave."""
    old, new = _rules_by_id(before_row.content), _rules_by_id(after_row.content)
    changes = (
        [
            RuleChange(
                rule_id=rule_id,
                stage=old[rule_id][0],
                change="removed",
                before=old[rule_id][1],
                after=None,
            )
            for rule_id in old
            if rule_id not in new
        ]
        + [
            RuleChange(
                rule_id=rule_id,
                stage=new[rule_id][0],
                change="added",
                before=None,
                after=new[rule_id][1],
            )
            for rule_id in new
            if rule_id not in old
        ]
        + [
            RuleChange(
                rule_id=rule_id,
                stage=new[rule_id][0],
                change="changed",
                before=old[rule_id][1],
                after=new[rule_id][1],
            )
            for rule_id in new
            if rule_id in old and old[rule_id] != new[rule_id]
        ]
    )
    other = sorted(
        field
        for field in set(before_row.content) | set(after_row.content)
        if field not in ("stages", "tests", "fixtures", "version")
        and before_row.content.get(field) != after_row.content.get(field)
    )
    differences: list[CaseDifference] = []
    compared = 0
    seen: set[str] = set()
    for source_row, source in ((before_row, before), (after_row, after)):
        for case in source.document.tests:
            if case.name in seen:
                continue
            seen.add(case.name)
            try:
                answers = ScreeningAnswers.model_validate(case_answers(source, case))
            except ValueError:
                continue
            compared += 1
            was, now = _outcome(before, answers), _outcome(after, answers)
            if was != now:
                differences.append(
                    CaseDifference(
                        case=case.name, source_version=source_row.version, before=was, after=now
                    )
                )
    return VersionDiff(
        key=key,
        from_version=before_row.version,
        to_version=after_row.version,
        rules=changes,
        other_changes=other,
        cases_compared=compared,
        behaviour_changes=differences,
    )


def export_yaml(row: RuleSetVersion) -> str:
    """The version's document as YAML, keys in the document's own order (Postgres JSONB does
    not keep key order, so the order comes from the document model)."""
    document = RuleSetDocument.model_validate(row.content).model_dump(mode="json")
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
