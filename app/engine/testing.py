"""Run a rule set's own test cases, measure rule coverage and check its safety principles.

A version may be published only when every case passes, every rule fires in at least one case
(100% rule coverage), no change towards more severe evidence lowers any case's level or urgency
(``monotonicity.py``) and every rule cites a source. Cases may extend a named fixture: the
case's answers are deep-merged onto it (mappings merge key by key; any other value, lists
included, replaces; null removes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.engine.answers import ScreeningAnswers
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import CURRENT_SEMANTICS, Determination, RuleResult
from app.engine.evaluate import evaluate
from app.engine.monotonicity import MonotonicityFinding, monotonicity_findings, uncited_rules
from app.engine.ruleset import Expectation, TestCase


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    failures: tuple[str, ...]
    fired: frozenset[str]


@dataclass(frozen=True, slots=True)
class TestReport:
    cases: tuple[CaseResult, ...]
    rules: tuple[str, ...]
    never_fired: tuple[str, ...]
    monotonicity: tuple[MonotonicityFinding, ...] = ()
    """Changes towards more severe evidence that lower the level or urgency of a case."""
    uncited: tuple[str, ...] = ()
    """Rules that cite no source."""
    semantics: int = CURRENT_SEMANTICS

    @property
    def coverage(self) -> float:
        """Share of rules that fired in at least one case (1.0 when there are no rules)."""
        if not self.rules:
            return 1.0
        return (len(self.rules) - len(self.never_fired)) / len(self.rules)

    @property
    def passed(self) -> bool:
        """Every case passed, there was at least one, and every rule fired somewhere; from
        semantics 2 also: more severe evidence never lowers, and every rule cites a source."""
        cases_pass = bool(self.cases) and all(c.passed for c in self.cases)
        if self.semantics < 2:
            return cases_pass and not self.never_fired
        return cases_pass and not (self.never_fired or self.monotonicity or self.uncited)


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` merged onto ``base`` without mutating either."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def case_answers(compiled: CompiledRuleSet, case: TestCase) -> dict[str, Any]:
    """The full answers of a test case, with its fixture applied."""
    if case.extends is None:
        return deep_merge({}, case.answers)
    return deep_merge(compiled.document.fixtures[case.extends], case.answers)


def run_case(compiled: CompiledRuleSet, case: TestCase) -> CaseResult:
    """Evaluate one case and compare every expectation it states."""
    try:
        answers = ScreeningAnswers.model_validate(case_answers(compiled, case))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return CaseResult(case.name, False, (f"answers are invalid: {problems}",), frozenset())
    determination = evaluate(compiled, answers)
    fired = frozenset(s.rule_id for s in determination.trace if s.result is RuleResult.FIRED)
    failures = tuple(_compare(case.expect, determination, fired))
    return CaseResult(case.name, not failures, failures, fired)


def _compare(expect: Expectation, got: Determination, fired: frozenset[str]) -> list[str]:
    """Every way ``got`` differs from what the case expects (an expectation the case does not
    state is not checked): the outcome first, then the rules, then the details."""
    failures: list[str] = []
    _compare_outcome(expect, got, failures)
    _compare_rules(expect, fired, failures)
    _compare_details(expect, got, failures)
    return failures


def _check(failures: list[str], what: str, expected: object, actual: object) -> None:
    if expected is not None and expected != actual:
        failures.append(f"{what}: expected {_show(expected)}, got {_show(actual)}")


def _compare_outcome(expect: Expectation, got: Determination, failures: list[str]) -> None:
    """The level (or that there is none), urgency, status and IOP verdict."""
    level = got.recommended_level.level if got.recommended_level else None
    _check(failures, "level", expect.level, level)
    if expect.no_level and level is not None:
        failures.append(f"level: expected none, got {_show(level)}")
    _check(failures, "urgency", expect.urgency, got.urgency)
    _check(failures, "status", expect.status, got.status)
    _check(failures, "iop", expect.iop, got.iop.verdict)


def _compare_rules(expect: Expectation, fired: frozenset[str], failures: list[str]) -> None:
    """The rules expected to fire, and those expected not to."""
    for rule_id in expect.fired:
        if rule_id not in fired:
            failures.append(f"rule '{rule_id}' was expected to fire but did not")
    for rule_id in expect.not_fired:
        if rule_id in fired:
            failures.append(f"rule '{rule_id}' fired but was expected not to")


def _compare_details(expect: Expectation, got: Determination, failures: list[str]) -> None:
    """Barriers and conditions (their codes, in any order), missing items (at least those
    expected), domain ratings and contradictions (exactly those expected, in any order)."""
    if expect.barriers is not None:
        _check(failures, "barriers", sorted(expect.barriers), sorted(b.code for b in got.barriers))
    if expect.conditions is not None:
        expected, actual = sorted(expect.conditions), sorted(c.code for c in got.conditions)
        _check(failures, "conditions", expected, actual)
    reported = {m.item for m in got.missing}
    for item in expect.missing:
        if item not in reported:
            failures.append(f"'{item}' was expected among the missing items {sorted(reported)}")
    ratings = {d.domain: d.rating for d in got.domains}
    for domain, rating in expect.domains.items():
        _check(failures, f"domain {domain.value}", rating, ratings.get(domain))
    if expect.contradictions is not None:
        found = sorted(c.rule_id for c in getattr(got, "contradictions", ()))
        _check(failures, "contradictions", sorted(expect.contradictions), found)


def _show(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(getattr(value, "value", value))


def run_tests(compiled: CompiledRuleSet) -> TestReport:
    """Run every test case of the rule set and report results, rule coverage, the changes
    towards more severe evidence that lower a case's level or urgency, and uncited rules."""
    results = tuple(run_case(compiled, case) for case in compiled.document.tests)
    fired_anywhere = frozenset().union(*(r.fired for r in results)) if results else frozenset()
    never = tuple(rule_id for rule_id in compiled.rule_ids if rule_id not in fired_anywhere)
    cases = ((case.name, case_answers(compiled, case)) for case in compiled.document.tests)
    return TestReport(
        results,
        compiled.rule_ids,
        never,
        monotonicity_findings(compiled, cases),
        uncited_rules(compiled),
        compiled.semantics,
    )
