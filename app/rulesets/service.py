"""Rule-set use cases: drafts, the publish/activate/retire lifecycle, diff, simulate.

Lifecycle: draft (editable with If-Match) → published (immutable) → active (exactly one per
rule set, enforced by a partial unique index) → retired. Activating an older published version
is the rollback; the version it replaces goes back to published.

Ownership: a rule set is ``shared`` or belongs to a tenant. Every tenant reads the shared ones
(their drafts excepted) and only the operator tenant changes them; a tenant's own rule sets
(typically a fork of a shared one with adjusted cut-offs) are invisible to every other tenant,
which gets 404 for them exactly as for a rule set that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.engine import (
    DEFAULT_RULE_SET_KEY,
    RuleSetError,
    default_rule_set,
)
from app.engine.ruleset import RuleSetDocument
from app.kernel.db import after_commit, utcnow
from app.kernel.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from app.kernel.tenancy import SHARED
from app.rulesets import work as rule_set_work
from app.rulesets.deciding import DecidingVersion
from app.rulesets.models import RuleSet, RuleSetEvent, RuleSetVersion, VersionStatus
from app.rulesets.overrides import (
    DecidedScreening,
    OverrideFigures,
    agreement,
    override_figures,
    override_report,
)
from app.rulesets.reports import SimulationChanges
from app.rulesets.repository import RuleSetRepository
from app.rulesets.resolve import RuleSets
from app.rulesets.schemas import (
    ActivationResult,
    ClinicianAgreement,
    DiffOverrides,
    LevelTransition,
    OverrideReport,
    RuleOverrides,
    RuleSetSummary,
    SimulationReport,
    ValidationReport,
    ValueChange,
    VersionDiff,
)
from app.rulesets.work import RULE_SET_WORK, StoredDocument
from app.security.actions import version_resource_id
from app.security.caller import Caller
from app.security.principal import Scope

SYSTEM_ACTOR = "system"
T = TypeVar("T")


def _by_size(
    groups: Mapping[tuple[str | None, str | None], list[str]],
) -> list[tuple[tuple[str | None, str | None], list[str]]]:
    """Groups of screening ids, the largest first (then by value, for a stable order)."""
    return sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0])))


@dataclass(frozen=True, slots=True)
class ShippedVersion:
    """Where the rule set shipped with this release stands in the database."""

    key: str
    label: str  # the document's own version label, e.g. 2026.12.0
    version: int  # its number as a stored version of the shared rule set
    status: VersionStatus
    active_version: int | None
    active_label: str | None

    @property
    def waiting(self) -> bool:
        """Published, not active: an operator has still to review and activate it."""
        return self.status == VersionStatus.PUBLISHED

    def notice(self) -> str:
        """What an operator reads at start-up while the shipped version waits."""
        base = f"/v1/rule-sets/shared/{self.key}"
        return (
            f"The rule set shipped with this release, {self.key} {self.label}, is stored as "
            f"shared version {self.version} and waits for activation; version "
            f"{self.active_version} ({self.active_label}) still decides new screenings. Review "
            f"GET {base}/diff?from={self.active_version}&to={self.version} and POST "
            f"{base}/versions/{self.version}/simulate, then activate it: POST "
            f"{base}/versions/{self.version}/activate, or carelevel rules activate "
            f"{self.version}. Stored screenings keep replaying under the versions that "
            "decided them."
        )


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


# The most recent stored screenings decided under a rule-set key (of one tenant; None: all), as
# (id, answers, level, urgency, IOP verdict, final level of the latest clinician decision) rows:
# what a simulation re-evaluates. The screenings package provides it (screenings depend on rule
# sets, never the reverse).
SampledScreening = tuple[str, dict[str, Any], str | None, str | None, str | None, str | None]
ScreeningSamples = Callable[
    [AsyncSession, str | None, str, int], Awaitable[Sequence[SampledScreening]]
]
# A tenant's screenings decided by one version (owner, key, version) that have a clinician
# decision, each with its latest, the most recently decided first, at most ``limit``: what an
# override report counts. The screenings package provides it too.
ScreeningDecisions = Callable[
    [AsyncSession, str, str, str, int, int], Awaitable[Sequence[DecidedScreening]]
]
# The most recently decided screenings an override report reads: a bound on its work. On
# PostgreSQL, reading the fired rules of 10 000 screenings from their stored determinations
# took 1 to 2.5 s (two busy cores), most of it decompressing and walking the traces.
OVERRIDE_DECISION_LIMIT = 20_000


def _clinician_agreement(simulated: SimulationChanges, min_count: int) -> ClinicianAgreement:
    found = agreement(
        simulated.decided,
        simulated.agreed_stored,
        simulated.agreed_simulated,
        simulated.unknown_level,
        min_count,
    )
    return ClinicianAgreement(
        decided=found.decided,
        agreed_stored=found.agreed_stored,
        agreed_simulated=found.agreed_simulated,
        excluded_unknown_level=found.excluded_unknown_level,
        min_count=min_count,
        count_granularity=found.granularity,
        suppressed=found.suppressed,
    )


class _UseCase:
    """The rule-set use cases of one caller (None: the service itself, seeding the default)
    in one transaction (``session``'s): what ``RuleSetService`` runs."""

    def __init__(
        self,
        session: AsyncSession,
        rule_sets: RuleSets,
        samples: ScreeningSamples,
        decisions: ScreeningDecisions,
        caller: Caller | None,
    ) -> None:
        self.session = session
        self.samples = samples
        self.decisions = decisions
        self.repository = RuleSetRepository(session)
        self.cache = rule_sets.cache
        self.caller = caller
        self.operator_tenant = rule_sets.operator_tenant
        self.actor = caller.label if caller else SYSTEM_ACTOR

    # --- who sees and changes what ----------------------------------------------------------

    def _owners(self) -> list[str]:
        """The owners whose rule sets the caller reads."""
        if self.caller is None:
            return [SHARED]
        return [SHARED, self.caller.tenant]

    def _readable(self, owner: str, key: str) -> None:
        if owner not in self._owners():
            # An import names no key until its document is read.
            raise NotFound(f"No rule set '{owner}/{key}'." if key else f"No owner '{owner}'.")

    def _sees_drafts(self, owner: str) -> bool:
        """Drafts of shared rule sets are work in progress of the operator tenant."""
        return self.caller is None or owner != SHARED or self.caller.tenant == self.operator_tenant

    def _writable(self, owner: str, key: str) -> None:
        self._readable(owner, key)
        if not self._sees_drafts(owner):
            raise Forbidden(
                f"Shared rule sets are maintained by the operator tenant. Fork '{key}' instead: "
                f"POST /v1/rule-sets/{self.caller.tenant if self.caller else owner}/{key}/"
                "versions?copy_from=<version>&copy_from_owner=shared."
            )

    def _record(
        self, outcome: int, resource_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        if self.caller is not None:
            record(self.session, self.caller, outcome, resource_id=resource_id, details=details)

    async def _find(self, owner: str, key: str, version: int) -> RuleSetVersion:
        """A version the caller may read (404 otherwise, hidden drafts included)."""
        self._readable(owner, key)
        row = await self.repository.version(owner, key, version)
        if row is None or (row.status == VersionStatus.DRAFT and not self._sees_drafts(owner)):
            raise NotFound(f"Rule set '{owner}/{key}' has no version {version}.")
        return row

    async def _in_worker(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker process, counted against the caller's tenant (a
        version that no longer compiles: 422, only drafts saved before a compiler change)."""
        tenant = self.caller.tenant if self.caller is not None else SYSTEM_ACTOR
        try:
            return await RULE_SET_WORK.run(tenant, work, *args)
        except RuleSetError as error:
            raise Unprocessable("The version does not compile.", errors=_problems(error)) from None

    # --- reading ---------------------------------------------------------------------------

    async def summaries(self) -> list[RuleSetSummary]:
        owners = self._owners()
        by_rule_set: dict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
        for owner, key, number, status, title in await self.repository.version_overview(owners):
            if status != VersionStatus.DRAFT or self._sees_drafts(owner):
                by_rule_set[(owner, key)].append((number, status, title))
        result = []
        for rule_set in await self.repository.rule_sets(owners):
            versions = by_rule_set.get((rule_set.owner, rule_set.key), [])
            if not versions and not self._sees_drafts(rule_set.owner):
                continue  # a shared rule set with drafts only does not exist yet for others
            active = next((v for v in versions if v[1] == VersionStatus.ACTIVE), None)
            result.append(
                RuleSetSummary(
                    owner=rule_set.owner,
                    key=rule_set.key,
                    title=versions[0][2] if versions else rule_set.key,
                    active_version=active[0] if active else None,
                    latest_version=versions[0][0] if versions else 0,
                    versions=len(versions),
                )
            )
        self._record(200, details={"rule_sets": len(result)})
        return result

    async def versions(self, owner: str, key: str) -> list[RuleSetVersion]:
        """The versions of (owner, key) the caller sees, without content, newest first; empty
        when its only drafts were deleted."""
        self._readable(owner, key)
        sees_drafts = self._sees_drafts(owner)
        versions = await self.repository.versions(owner, key, drafts=sees_drafts)
        if not versions and (not sees_drafts or await self.repository.rule_set(owner, key) is None):
            raise NotFound(f"No rule set '{owner}/{key}'.")
        self._record(200, details={"versions": len(versions)})
        return list(versions)

    async def version(self, owner: str, key: str, version: int) -> RuleSetVersion:
        row = await self._find(owner, key, version)
        self._record(200)
        return row

    async def export(self, owner: str, key: str, version: int) -> tuple[RuleSetVersion, str]:
        """A version and its document as YAML (written in a worker process: seconds for a
        large rule set)."""
        row = await self._find(owner, key, version)
        exported = await self._in_worker(rule_set_work.export, StoredDocument.of(row))
        self._record(200)
        return row, exported

    # --- drafts ----------------------------------------------------------------------------

    async def create_draft(
        self,
        owner: str,
        key: str | None,
        source: str | bytes | Mapping[str, Any] | None,
        copy_from: int | None = None,
        copy_from_owner: str | None = None,
    ) -> RuleSetVersion:
        """A new draft of (owner, key) from a document, or a copy of a version of the same key
        (owned by ``copy_from_owner``, the same owner by default: a fork copies a shared one).
        Without ``key`` (an import), the document's own key decides."""
        self._writable(owner, key or "")
        parent_owner = None
        if source is None:
            if key is None or copy_from is None:
                raise Unprocessable("Give a rule-set document, or copy_from with a version.")
            parent_owner = copy_from_owner or owner
            parent = await self._find(parent_owner, key, copy_from)
            document, sha = await self._checked(parent.content)
        else:
            document, sha = await self._checked(source)
        if key is not None and document.key != key:
            raise Unprocessable(
                f"The document's key '{document.key}' does not match the URL key '{key}'.",
                errors=[FieldProblem(pointer="#/key", detail="must match the rule-set key")],
            )
        rule_set = await self._lock_or_create(owner, document.key)
        number = await self.repository.next_version_number(rule_set)
        now = utcnow()
        row = RuleSetVersion(
            rule_set_id=rule_set.id,
            owner=owner,
            key=document.key,
            version=number,
            status=VersionStatus.DRAFT,
            title=document.title,
            content=document.model_dump(mode="json"),
            sha256=sha,
            revision=1,
            parent_owner=parent_owner,
            parent_version=copy_from if parent_owner else None,
            created_by=self.actor,
            created_at=now,
            updated_at=now,
        )
        self.repository.add(row)
        await self.session.flush()
        self._event(
            row, "create_draft", {"parent_owner": parent_owner, "parent_version": copy_from}
        )
        self._record(
            201,
            version_resource_id(owner, row.key, number),
            {"parent": version_resource_id(parent_owner, row.key, copy_from)}
            if parent_owner and copy_from
            else None,
        )
        return row

    async def update_draft(
        self,
        owner: str,
        key: str,
        version: int,
        source: str | bytes | Mapping[str, Any],
        if_match: str | None,
    ) -> RuleSetVersion:
        row = await self._draft_for_change(owner, key, version, if_match)
        document, sha = await self._checked(source)
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
        self._record(200, details={"revision": row.revision})
        return row

    async def delete_draft(self, owner: str, key: str, version: int, if_match: str | None) -> None:
        row = await self._draft_for_change(owner, key, version, if_match)
        self._event(row, "delete_draft", {})
        await self.session.flush()
        await self.repository.delete(row)
        await self.session.flush()
        self._record(204)

    async def _draft_for_change(
        self, owner: str, key: str, version: int, if_match: str | None
    ) -> RuleSetVersion:
        await self._lock(owner, key)
        row = await self._find(owner, key, version)
        if row.status != VersionStatus.DRAFT:
            raise Conflict(
                f"Version {version} of '{owner}/{key}' is {row.status}: only drafts can change. "
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

    async def validate(self, owner: str, key: str, version: int) -> ValidationReport:
        report = await self._report(await self._find(owner, key, version))
        self._record(200, details={"publishable": report.publishable})
        return report

    async def _checked(
        self, source: str | bytes | Mapping[str, Any]
    ) -> tuple[RuleSetDocument, str]:
        """A new or edited draft's document and its sha256, parsed and compiled in a worker
        process; one that does not compile, or that declares an earlier ``semantics``, is
        refused (422)."""
        tenant = self.caller.tenant if self.caller is not None else SYSTEM_ACTOR
        try:
            return await RULE_SET_WORK.run(tenant, rule_set_work.draft, source)
        except RuleSetError as error:
            raise Unprocessable(
                f"The rule set is invalid ({len(error.problems)} problems).",
                errors=_problems(error),
            ) from None

    async def _report(self, row: RuleSetVersion) -> ValidationReport:
        """The validation report of ``row``: compiled and its test cases run in a worker
        process, so that a large rule set does not stall other tenants' requests."""
        return await self._in_worker(rule_set_work.report, StoredDocument.of(row))

    async def publish(self, owner: str, key: str, version: int) -> RuleSetVersion:
        await self._lock(owner, key)
        row = await self._find(owner, key, version)
        if row.status != VersionStatus.DRAFT:
            raise Conflict(f"Version {version} of '{owner}/{key}' is already {row.status}.")
        report = await self._report(row)
        if not report.publishable:
            raise Unprocessable(
                "Only a draft that compiles under the current semantics, passes every test "
                "case, fires every rule, never lowers a case on more severe evidence and cites "
                f"a source for every rule can be published: {report.cases_passed}/"
                f"{report.cases_total} cases passed, {len(report.rules_never_fired)} rules "
                f"never fire, {len(report.monotonicity)} changes towards more severe evidence "
                f"lower a case, {len(report.rules_without_references)} rules cite no source.",
                extra={"report": report.model_dump(mode="json")},
            )
        row.status = VersionStatus.PUBLISHED
        row.published_by, row.published_at = self.actor, utcnow()
        self._event(row, "publish", {"sha256": row.sha256})
        await self.session.flush()
        self._record(200, details={"sha256": row.sha256})
        return row

    async def activate(self, owner: str, key: str, version: int) -> ActivationResult:
        rule_set = await self._lock(owner, key)
        row = await self._find(owner, key, version)
        if row.status == VersionStatus.ACTIVE:
            self._record(200, details={"already_active": True})
            return ActivationResult(
                owner=owner,
                key=key,
                version=version,
                status=VersionStatus.ACTIVE,
                previous_active_version=None,
            )
        if row.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Version {version} of '{owner}/{key}' is {row.status}: only a published version "
                "can be activated."
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
        deciding = DecidingVersion(row.id, owner, key, version, self.cache.compile(row))
        after_commit(self.session, lambda: self.cache.set_active(deciding))
        self._record(200, details={"previous_active_version": previous})
        return ActivationResult(
            owner=owner,
            key=key,
            version=version,
            status=VersionStatus.ACTIVE,
            previous_active_version=previous,
        )

    async def retire(self, owner: str, key: str, version: int) -> RuleSetVersion:
        await self._lock(owner, key)
        row = await self._find(owner, key, version)
        if row.status != VersionStatus.PUBLISHED:
            raise Conflict(
                f"Version {version} of '{owner}/{key}' is {row.status}: only a published version "
                "that is not active can be retired (activate another version first)."
            )
        row.status = VersionStatus.RETIRED
        row.retired_by, row.retired_at = self.actor, utcnow()
        self._event(row, "retire", {})
        await self.session.flush()
        self._record(200)
        return row

    async def _lock(self, owner: str, key: str) -> RuleSet:
        """Lock a rule set before changing any of its versions (403/404 when the caller may
        not change it).

        Changes to one rule set (edit, delete, publish, activate, retire, new drafts) then run
        one at a time, each reading what the previous one committed: a draft cannot be edited
        after it was published, nor an active version retired (see
        ``RuleSetRepository.rule_set`` for how Postgres and SQLite lock).
        """
        self._writable(owner, key)
        rule_set = await self.repository.rule_set(owner, key, lock=True)
        if rule_set is None:
            raise NotFound(f"No rule set '{owner}/{key}'.")
        return rule_set

    async def _lock_or_create(self, owner: str, key: str) -> RuleSet:
        """Lock the rule set (owner, key), creating it first when it is new (a concurrent
        creation of the same key wins, and this one locks the row it created)."""
        rule_set = await self.repository.rule_set(owner, key, lock=True)
        if rule_set is not None:
            return rule_set
        try:
            async with self.session.begin_nested():
                return await self.repository.add_rule_set(owner, key)
        except IntegrityError:
            return await self._lock(owner, key)

    # --- comparison --------------------------------------------------------------------------

    async def diff(
        self,
        owner: str,
        key: str,
        from_version: int,
        to_version: int,
        from_owner: str | None = None,
        *,
        min_count: int,
    ) -> VersionDiff:
        """Compare ``from_owner``'s version (the same owner by default: a fork against the
        shared version it came from otherwise) with ``owner``'s. A caller who reads
        screenings also gets, for each removed or changed rule, how its tenant's clinicians
        decided the screenings of ``from`` in which it fired."""
        before_row = await self._find(from_owner or owner, key, from_version)
        after_row = await self._find(owner, key, to_version)
        result = await self._in_worker(
            rule_set_work.diff, key, StoredDocument.of(before_row), StoredDocument.of(after_row)
        )
        if self.caller is not None and not self.caller.principal.missing(
            frozenset({Scope.SCREENINGS_READ})
        ):
            result = await self._with_overrides(result, before_row, min_count)
        self._record(
            200,
            details={
                "from": version_resource_id(before_row.owner, key, from_version),
                "to": version_resource_id(owner, key, to_version),
            },
        )
        return result

    async def _with_overrides(
        self, diff: VersionDiff, before: RuleSetVersion, min_count: int
    ) -> VersionDiff:
        """``diff`` with the override figures of its removed and changed rules in ``before``."""
        figures, truncated = await self._figures(before, min_count)
        by_rule = {figure.rule_id: figure for figure in figures.rules}
        rules = [
            change.model_copy(
                update={
                    "overrides": RuleOverrides.model_validate(
                        by_rule[change.rule_id], from_attributes=True
                    )
                }
            )
            if change.change != "added" and change.rule_id in by_rule
            else change
            for change in diff.rules
        ]
        summary = DiffOverrides(
            decisions_considered=figures.decided,
            override_rate=figures.override_rate,
            min_count=min_count,
            count_granularity=figures.granularity,
            truncated=truncated,
        )
        return diff.model_copy(update={"rules": rules, "overrides": summary})

    async def _figures(self, row: RuleSetVersion, min_count: int) -> tuple[OverrideFigures, bool]:
        """The override figures of the caller's decided screenings of ``row``, and whether
        more were decided than were read."""
        assert self.caller is not None
        limit = OVERRIDE_DECISION_LIMIT
        rows = await self.decisions(
            self.session, self.caller.tenant, row.owner, row.key, row.version, limit + 1
        )
        return override_figures(rows[:limit], min_count), len(rows) > limit

    async def overrides(self, owner: str, key: str, version: int, min_count: int) -> OverrideReport:
        """How the caller's clinicians decided the screenings this version decided (a shared
        version too: only the caller's tenant's decisions count)."""
        row = await self._find(owner, key, version)
        figures, truncated = await self._figures(row, min_count)
        self._record(200, details={"decisions_considered": figures.decided, "truncated": truncated})
        return override_report(
            row.owner, row.key, row.version, figures, OVERRIDE_DECISION_LIMIT, truncated
        )

    async def simulate(
        self, owner: str, key: str, version: int, sample: int, min_count: int
    ) -> SimulationReport:
        """Re-evaluate the caller's most recent stored screenings of ``key`` (whichever owner's
        version decided them) under this version: how the levels, urgencies and IOP verdicts
        would change, and how often the stored and the new levels match what clinicians
        decided."""
        row = await self._find(owner, key, version)
        tenant = self.caller.tenant if self.caller is not None else None
        rows = await self.samples(self.session, tenant, key, sample)
        # Re-evaluating hundreds of screenings is CPU work: a worker process does it.
        simulated = await self._in_worker(rule_set_work.simulation, StoredDocument.of(row), rows)
        levels, urgencies, verdicts = simulated.levels, simulated.urgencies, simulated.verdicts
        changed = simulated.changed
        self._record(200, details={"screenings_considered": len(rows), "changed": changed})
        return SimulationReport(
            owner=owner,
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
                for (before, after), ids in _by_size(levels)
            ],
            urgency_changes=[
                ValueChange(before=b, after=a, count=len(ids), example_screening_ids=ids[:5])
                for (b, a), ids in _by_size(urgencies)
            ],
            verdict_changes=[
                ValueChange(before=b, after=a, count=len(ids), example_screening_ids=ids[:5])
                for (b, a), ids in _by_size(verdicts)
            ],
            sample_limit=sample,
            clinician_agreement=_clinician_agreement(simulated, min_count),
        )

    # --- seeding and shipped versions ----------------------------------------------------------

    async def ensure_default(self) -> ShippedVersion:
        """Make the shipped default rule set available as the shared one.

        On a fresh database it is loaded, published and activated. On a database that already
        holds the shared rule set, a shipped document not stored yet is added as a new
        published version, never activated: an operator reviews it (``diff``, ``simulate``)
        and activates it. Screenings keep replaying under the versions that decided them.
        """
        compiled = default_rule_set()
        self.cache.compiled.add(compiled)  # the engine compiled the shipped document already
        shipped, sha = compiled.document, compiled.ref.sha256
        rule_set = await self.repository.rule_set(SHARED, DEFAULT_RULE_SET_KEY)
        if rule_set is None:
            await self._lock_or_create(SHARED, DEFAULT_RULE_SET_KEY)
        else:
            await self._lock(SHARED, DEFAULT_RULE_SET_KEY)
        versions = await self.repository.versions(SHARED, DEFAULT_RULE_SET_KEY, drafts=True)
        stored = next((v for v in versions if v.sha256 == sha), None)
        if stored is None:
            # The engine keeps the shipped document parsed once per process; parsing its YAML
            # again on every start costs far more than validating the parsed document.
            row = await self.create_draft(SHARED, None, shipped.model_dump(mode="json"))
            await self.publish(SHARED, row.key, row.version)
            if not versions:  # a fresh database: the shipped version decides from the start
                await self.activate(SHARED, row.key, row.version)
            stored = row
        active_version: int | None = stored.version
        active_label: str | None = shipped.version
        if stored.status != VersionStatus.ACTIVE:
            number = next((v.version for v in versions if v.status == VersionStatus.ACTIVE), None)
            found = None
            if number is not None:  # the listed rows leave their content unloaded
                found = await self.repository.version(SHARED, stored.key, number)
            active_version = found.version if found else None
            active_label = str(found.content.get("version")) if found else None
        return ShippedVersion(
            key=DEFAULT_RULE_SET_KEY,
            label=shipped.version,
            version=stored.version,
            status=VersionStatus(stored.status),
            active_version=active_version,
            active_label=active_label,
        )

    def _event(self, row: RuleSetVersion, action: str, details: dict[str, Any]) -> None:
        self.repository.add(
            RuleSetEvent(
                rule_set_version_id=row.id,
                owner=row.owner,
                key=row.key,
                version=row.version,
                action=action,
                actor=self.actor,
                at=utcnow(),
                details=details,
            )
        )


class RuleSetService:
    """Rule-set use cases. Each method is one unit of work: one transaction for everything it
    reads and writes, the audit event of ``caller`` (None: the service itself, which records
    none) included, committed before it returns; an activation reaches this process's cache
    once that transaction has committed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rule_sets: RuleSets,
        samples: ScreeningSamples,
        decisions: ScreeningDecisions,
    ) -> None:
        self.sessions = sessions
        self.rule_sets = rule_sets
        self.samples = samples  # the stored screenings a simulation re-evaluates
        self.decisions = decisions  # the clinician decisions an override report counts

    async def _run(self, caller: Caller | None, use_case: Callable[[_UseCase], Awaitable[T]]) -> T:
        async with self.sessions() as session, session.begin():
            return await use_case(
                _UseCase(session, self.rule_sets, self.samples, self.decisions, caller)
            )

    async def summaries(self, caller: Caller | None) -> list[RuleSetSummary]:
        return await self._run(caller, lambda work: work.summaries())

    async def versions(self, caller: Caller | None, owner: str, key: str) -> list[RuleSetVersion]:
        return await self._run(caller, lambda work: work.versions(owner, key))

    async def version(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> RuleSetVersion:
        return await self._run(caller, lambda work: work.version(owner, key, version))

    async def export(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> tuple[RuleSetVersion, str]:
        return await self._run(caller, lambda work: work.export(owner, key, version))

    async def create_draft(
        self,
        caller: Caller | None,
        owner: str,
        key: str | None,
        source: str | bytes | Mapping[str, Any] | None,
        copy_from: int | None = None,
        copy_from_owner: str | None = None,
    ) -> RuleSetVersion:
        return await self._run(
            caller,
            lambda work: work.create_draft(owner, key, source, copy_from, copy_from_owner),
        )

    async def update_draft(
        self,
        caller: Caller | None,
        owner: str,
        key: str,
        version: int,
        source: str | bytes | Mapping[str, Any],
        if_match: str | None,
    ) -> RuleSetVersion:
        return await self._run(
            caller, lambda work: work.update_draft(owner, key, version, source, if_match)
        )

    async def delete_draft(
        self, caller: Caller | None, owner: str, key: str, version: int, if_match: str | None
    ) -> None:
        await self._run(caller, lambda work: work.delete_draft(owner, key, version, if_match))

    async def validate(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> ValidationReport:
        return await self._run(caller, lambda work: work.validate(owner, key, version))

    async def publish(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> RuleSetVersion:
        return await self._run(caller, lambda work: work.publish(owner, key, version))

    async def activate(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> ActivationResult:
        return await self._run(caller, lambda work: work.activate(owner, key, version))

    async def retire(
        self, caller: Caller | None, owner: str, key: str, version: int
    ) -> RuleSetVersion:
        return await self._run(caller, lambda work: work.retire(owner, key, version))

    async def diff(
        self,
        caller: Caller | None,
        owner: str,
        key: str,
        from_version: int,
        to_version: int,
        from_owner: str | None = None,
        *,
        min_count: int,
    ) -> VersionDiff:
        return await self._run(
            caller,
            lambda work: work.diff(
                owner, key, from_version, to_version, from_owner, min_count=min_count
            ),
        )

    async def simulate(
        self,
        caller: Caller | None,
        owner: str,
        key: str,
        version: int,
        sample: int,
        min_count: int,
    ) -> SimulationReport:
        return await self._run(
            caller, lambda work: work.simulate(owner, key, version, sample, min_count)
        )

    async def overrides(
        self, caller: Caller, owner: str, key: str, version: int, min_count: int
    ) -> OverrideReport:
        return await self._run(caller, lambda work: work.overrides(owner, key, version, min_count))

    async def ensure_default(self) -> ShippedVersion:
        """Seed or upgrade the shipped default rule set (see ``_UseCase.ensure_default``)."""
        return await self._run(None, lambda work: work.ensure_default())
