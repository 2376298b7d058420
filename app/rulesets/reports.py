"""Pure reports on stored versions: validation, the difference between two versions, a
simulation's re-evaluation of stored screenings, and the YAML export. No database access: they
take a stored version's identity and document (a row, or the plain copy worker processes get,
app/rulesets/work.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from app.engine import RuleSetError, ScreeningAnswers, evaluate, run_tests
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import CURRENT_SEMANTICS
from app.engine.ruleset import RuleSetDocument
from app.engine.testing import case_answers
from app.rulesets.compiled import COMPILED
from app.rulesets.overrides import UNKNOWN_LEVEL
from app.rulesets.schemas import (
    CaseDifference,
    CaseOutcome,
    MonotonicityFindingOut,
    RuleChange,
    RuleSetProblemOut,
    ValidationReport,
    VersionDiff,
)

# Reports by (sha256, owner, key, version): a report is a function of these alone, and
# every fresh database publishes the same shipped document, whose 110 cases take a while.
_REPORTS: dict[tuple[str, str, str, int], ValidationReport] = {}
_REPORTS_LIMIT = 256


class StoredVersion(Protocol):
    """A stored version's identity and document (a row, or its plain copy)."""

    @property
    def owner(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def content(self) -> dict[str, Any]: ...


def _compile_in_process(row: StoredVersion) -> CompiledRuleSet:
    return COMPILED.compile(row.content, row.sha256, str(row.version))


def validation_report(
    row: StoredVersion,
    compile_version: Callable[[StoredVersion], CompiledRuleSet] = _compile_in_process,
) -> ValidationReport:
    """Compile a stored version (with ``compile_version``: the service's cache, the
    process's by default) and run its test cases (pure; no database access)."""
    key = (row.sha256, row.owner, row.key, row.version)
    report = _REPORTS.get(key)
    if report is None:
        report = _validate(row, compile_version)
        if len(_REPORTS) < _REPORTS_LIMIT:
            _REPORTS[key] = report
    return report.model_copy(deep=True)


def _validate(
    row: StoredVersion, compile_version: Callable[[StoredVersion], CompiledRuleSet]
) -> ValidationReport:
    semantics = row.content.get("semantics", 1)
    try:
        compiled = compile_version(row)
    except RuleSetError as error:
        return ValidationReport(
            owner=row.owner,
            key=row.key,
            version=row.version,
            semantics=semantics if isinstance(semantics, int) else None,
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
            monotonicity=[],
            rules_without_references=[],
            publishable=False,
        )
    report = run_tests(compiled)
    passed = sum(1 for case in report.cases if case.passed)
    return ValidationReport(
        owner=row.owner,
        key=row.key,
        version=row.version,
        semantics=compiled.semantics,
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
        monotonicity=[
            MonotonicityFindingOut(case=f.case, change=f.change, before=f.before, after=f.after)
            for f in report.monotonicity
        ],
        rules_without_references=list(report.uncited),
        unread_questions=list(compiled.unread_questions),
        publishable=report.passed and compiled.semantics == CURRENT_SEMANTICS,
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
    before_row: StoredVersion,
    before: CompiledRuleSet,
    after_row: StoredVersion,
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
                        case=case.name,
                        source_owner=source_row.owner,
                        source_version=source_row.version,
                        before=was,
                        after=now,
                    )
                )
    return VersionDiff(
        key=key,
        from_owner=before_row.owner,
        from_version=before_row.version,
        to_owner=after_row.owner,
        to_version=after_row.version,
        rules=changes,
        other_changes=other,
        cases_compared=compared,
        behaviour_changes=differences,
    )


# Screening ids by (value before, value after).
Changes = dict[tuple[str | None, str | None], list[str]]


@dataclass(frozen=True, slots=True)
class SimulationChanges:
    """How stored screenings' level, urgency and IOP verdict change under a version, and how
    often the stored and the simulated level match a clinician's final level."""

    levels: Changes
    urgencies: Changes
    verdicts: Changes
    changed: int  # screenings whose level changed
    decided: int = 0  # screenings whose latest clinician decision names a final level
    agreed_stored: int = 0  # of those, how many the stored level matches
    agreed_simulated: int = 0  # and how many the simulated level would match
    unknown_level: int = 0  # left out: their latest decision is a CDS override (level unknown)


def re_evaluation(compiled: CompiledRuleSet, rows: Sequence[Any]) -> SimulationChanges:
    """Stored screenings ``(id, answers, level, urgency, verdict, final level)`` re-evaluated
    under ``compiled``: their level, urgency and verdict changes, how many changed level, and
    how the stored and new levels compare with the clinicians' final levels (a final level
    of ``unknown``, a CDS override, is left out and counted apart)."""
    levels: Changes = defaultdict(list)
    urgencies: Changes = defaultdict(list)
    verdicts: Changes = defaultdict(list)
    changed = decided = agreed_stored = agreed_simulated = unknown_level = 0
    for screening_id, answers, level, urgency, verdict, final_level in rows:
        result = evaluate(compiled, ScreeningAnswers.model_validate(answers))
        new_level = result.recommended_level.level.value if result.recommended_level else None
        if new_level != level:
            changed += 1
        if final_level == UNKNOWN_LEVEL:
            unknown_level += 1
        elif final_level is not None:
            decided += 1
            agreed_stored += final_level == level
            agreed_simulated += final_level == new_level
        levels[(level, new_level)].append(screening_id)
        if result.urgency.value != urgency:
            urgencies[(urgency, result.urgency.value)].append(screening_id)
        if result.iop.verdict.value != verdict:
            verdicts[(verdict, result.iop.verdict.value)].append(screening_id)
    return SimulationChanges(
        dict(levels),
        dict(urgencies),
        dict(verdicts),
        changed,
        decided,
        agreed_stored,
        agreed_simulated,
        unknown_level,
    )


def export_yaml(row: StoredVersion) -> str:
    """The version's document as YAML, keys in the document's own order (Postgres JSONB does
    not keep key order, so the order comes from the document model)."""
    document = RuleSetDocument.model_validate(row.content).model_dump(mode="json")
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
