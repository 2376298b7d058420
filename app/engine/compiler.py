"""Compile a rule-set document into a ``CompiledRuleSet``, rejecting anything unsound.

Compilation happens once per rule-set version (the service caches the result). Every problem
found is reported together, each naming the rule id and where in the document it is: syntax
errors, unknown facts, type mismatches, duplicate ids, invalid outcomes, stages out of order and
cut-off tables that do not cover their instrument's range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson
import yaml
from pydantic import ValidationError

from app.engine.answered import (
    NO_WALK,
    AnswerWalk,
    answers_read_by_reach,
    context_problems,
    question_paths,
    walk,
)
from app.engine.determination import (
    ENGINE_VERSIONS,
    LEVEL_INFO,
    LEVEL_INFO_3,
    LEVEL_RANK,
    RATING_RANK,
    Accommodation,
    CitedReason,
    CitedSafetyAlert,
    Contradiction,
    Domain,
    EliminatedLevel,
    LevelInfo,
    LevelOfCare,
    PlacementCondition,
    Rating,
    Reason,
    RuleResult,
    RuleSetRef,
    SafetyAlert,
    Stage,
    TraceStep,
    Urgency,
)
from app.engine.expressions import CompiledCondition, ExpressionError, FactType, compile_condition
from app.engine.facts import (
    EVERY_FACT,
    ExtractionPlan,
    FactSpec,
    build_catalogue,
    extraction_plan,
    types_for_stage,
)
from app.engine.instruments import (
    DEFAULT_POLICIES,
    SPECS,
    AnswerKind,
    Band,
    InstrumentId,
    InstrumentPolicy,
    InstrumentSpec,
    ScoringSex,
)
from app.engine.ruleset import (
    ConsistencyStage,
    ContradictionRule,
    DomainStage,
    FeasibilityRule,
    FeasibilityStage,
    InformationStage,
    InstrumentPolicyDocument,
    PlacementRule,
    PlacementStage,
    PopulationPolicyDocument,
    RuleBase,
    RuleSetDocument,
    SafetyRule,
    SafetyStage,
)

REQUIRED_STAGES = (Stage.SAFETY, Stage.PLACEMENT)
SAFETY_OVERRIDE_LEVELS = (LevelOfCare.INPATIENT, LevelOfCare.EMERGENCY_EVALUATION)


@dataclass(frozen=True, slots=True)
class RuleSetProblem:
    """One reason a document cannot be compiled."""

    rule_id: str | None
    location: str
    message: str

    def __str__(self) -> str:
        if self.rule_id:
            return f"rule '{self.rule_id}' ({self.location}): {self.message}"
        return f"{self.location}: {self.message}"


class RuleSetError(ValueError):
    """The document is not a valid rule set; ``problems`` lists every reason."""

    def __init__(self, problems: list[RuleSetProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))

    def __reduce__(self) -> tuple[type[RuleSetError], tuple[list[RuleSetProblem]]]:
        # Rebuilt from its problems when it crosses processes (compiling in a worker).
        return (RuleSetError, (self.problems,))


@dataclass(frozen=True, slots=True)
class Explanations:
    """How a rule set explains itself: reasons and alerts carry their rules' references from
    semantics 2 on; under semantics 1 they keep the shape they had, byte for byte."""

    cited: bool

    def reason(self, rule_id: str | None, text: str, references: tuple[str, ...] = ()) -> Reason:
        if self.cited:
            return CitedReason(rule_id, text, references)
        return Reason(rule_id, text)

    def alert(
        self,
        rule_id: str,
        urgency: Urgency,
        action: str,
        reason: str,
        overrides: bool,
        references: tuple[str, ...],
    ) -> SafetyAlert:
        if self.cited:
            return CitedSafetyAlert(rule_id, urgency, action, reason, overrides, references)
        return SafetyAlert(rule_id, urgency, action, reason, overrides)


@dataclass(frozen=True, slots=True)
class EngineReasons:
    """The reasons the engine gives itself (no rule behind them), in the rule set's shape."""

    no_override: Reason
    no_rule: Reason
    provisional: Reason
    no_concern: Reason

    @classmethod
    def of(cls, explain: Explanations) -> EngineReasons:
        return cls(
            explain.reason(None, "No safety override for this level fired."),
            explain.reason(None, "No rule in this rule set indicated this level."),
            explain.reason(
                None, "Provisional: information listed as missing could change this verdict."
            ),
            explain.reason(
                None,
                "What the person is asking for help with is not known yet: ask it before a "
                "level can be recommended (the safety questions are evaluated already).",
            ),
        )


_EXPLANATIONS: Final = {cited: Explanations(cited) for cited in (False, True)}
_ENGINE_REASONS: Final = {cited: EngineReasons.of(_EXPLANATIONS[cited]) for cited in (False, True)}


@dataclass(frozen=True, slots=True)
class _RuleOutcomes:
    """What every compiled rule shares: its trace steps and reason, built once at compile time
    so evaluation only picks them (the hot path allocates nothing per rule)."""

    fired_step: TraceStep
    not_fired_step: TraceStep
    reason: Reason
    references: tuple[str, ...]


def _outcomes(stage: Stage, rule: RuleBase, explain: Explanations) -> dict[str, Any]:
    references = tuple(rule.references)
    return {
        "fired_step": TraceStep(stage, rule.id, RuleResult.FIRED),
        "not_fired_step": TraceStep(stage, rule.id, RuleResult.NOT_FIRED),
        "reason": explain.reason(rule.id, rule.description, references),
        "references": references,
    }


@dataclass(frozen=True, slots=True)
class CompiledSafetyRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    override_level: LevelOfCare | None
    urgency: Urgency
    action: str
    requires: tuple[str, ...]
    alert: SafetyAlert
    eliminates: Reason | None = None
    """An override: why it eliminated a level below the one it set (exceeded; under semantics
    3 at emergency evaluation, decided after it; before semantics 3, ruled out)."""


@dataclass(frozen=True, slots=True)
class CompiledContradictionRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    confirm: str
    contradiction: Contradiction


@dataclass(frozen=True, slots=True)
class CompiledInformationRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledDomainRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    domain: Domain
    rating: Rating
    rank: int


@dataclass(frozen=True, slots=True)
class CompiledPlacementRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    level: LevelOfCare
    rank: int
    urgency: Urgency
    conditions: tuple[PlacementCondition, ...]
    not_met: Reason
    not_evaluated: Reason
    ruled_out: Reason
    exceeded: Reason
    """Semantics 3: why a level below the one this rule placed is exceeded."""
    deferred: Reason
    """Semantics 3: why every other level waits, when this rule places emergency evaluation."""


@dataclass(frozen=True, slots=True)
class CompiledAccommodation:
    accommodation: Accommodation
    condition: CompiledCondition | None


@dataclass(frozen=True, slots=True)
class CompiledFeasibilityRule(_RuleOutcomes):
    id: str
    description: str
    condition: CompiledCondition
    code: str
    barrier_description: str
    accommodations: tuple[CompiledAccommodation, ...]


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    """A validated rule set, ready to evaluate; immutable and safe to share between requests."""

    document: RuleSetDocument
    ref: RuleSetRef
    policies: Mapping[InstrumentId, InstrumentPolicy]
    catalogue: Mapping[str, FactSpec]
    safety: tuple[CompiledSafetyRule, ...]
    information: tuple[CompiledInformationRule, ...]
    domains: tuple[CompiledDomainRule, ...]
    placement: tuple[CompiledPlacementRule, ...]
    default_level: LevelOfCare
    default_reason: str
    feasibility: tuple[CompiledFeasibilityRule, ...]
    rule_ids: tuple[str, ...] = field(default=())
    not_indicated: Mapping[LevelOfCare, tuple[Reason, ...]] = field(default_factory=dict)
    """Why each level was not indicated when every placement rule was determined (cached)."""
    extraction: ExtractionPlan = EVERY_FACT
    """Extract only the facts this rule set's conditions read."""
    eliminated_memo: dict[tuple[int | str, ...], tuple[EliminatedLevel, ...]] = field(
        default_factory=dict, compare=False
    )
    """Memo of the ruled-out levels per decisive placement rules (filled during evaluation)."""
    default_decision: Reason = Reason(None, "")
    default_ruled_out: Reason = Reason(None, "")
    semantics: int = 1
    """How the document is evaluated (``RuleSetDocument.semantics``)."""
    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each rule's references, by rule id (an index of what the rules hold)."""
    consistency: tuple[CompiledContradictionRule, ...] = ()
    """Semantics 3: the consistency rules, run on every screening after safety."""
    default_exceeded: Reason = Reason(None, "")
    default_deferred: Reason = Reason(None, "")
    questions: tuple[str, ...] = ()
    """Every answer path of the questionnaire (see ``app.engine.answered``)."""
    unread_questions: tuple[str, ...] = ()
    """The answer paths no rule reads and the rule set does not show as context."""
    context_walk: AnswerWalk = NO_WALK
    """Semantics 3: finds the context answers given."""
    unused_walks: tuple[AnswerWalk, AnswerWalk, AnswerWalk] = (NO_WALK, NO_WALK, NO_WALK)
    """Semantics 3: finds the answers given that no rule evaluated read, indexed by how far the
    evaluation went (``app.engine.answered.Reach``): the read set depends only on which stages
    ran."""

    @property
    def engine_version(self) -> str:
        """The engine version this rule set is evaluated as."""
        return ENGINE_VERSIONS[self.semantics]

    @property
    def explain(self) -> Explanations:
        """The shape of this rule set's reasons and alerts."""
        return _EXPLANATIONS[self.semantics >= 2]

    @property
    def engine_reasons(self) -> EngineReasons:
        """The engine's own reasons, in this rule set's shape."""
        return _ENGINE_REASONS[self.semantics >= 2]

    @property
    def level_info(self) -> Mapping[LevelOfCare, LevelInfo]:
        """What each level is, in this engine version's words."""
        return LEVEL_INFO_3 if self.semantics >= 3 else LEVEL_INFO

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def version(self) -> str:
        return self.ref.version


def canonical_json(document: RuleSetDocument) -> bytes:
    """The canonical JSON of a document: sorted keys, no insignificant whitespace."""
    return orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def document_sha256(document: RuleSetDocument) -> str:
    """The sha256 (hex) of a document's canonical JSON; identifies its exact content."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def parse_document(source: str | bytes | Mapping[str, Any]) -> RuleSetDocument:
    """Parse YAML/JSON text or an already-loaded mapping into a validated document."""
    raw = load_document(source)
    if not isinstance(raw, Mapping):
        raise RuleSetError([RuleSetProblem(None, "document", "must be a mapping at the top level")])
    try:
        return RuleSetDocument.model_validate(raw)
    except ValidationError as error:
        raise RuleSetError([_problem_from(raw, e) for e in error.errors()]) from None


_STAGE_TAGS = frozenset(stage.value for stage in Stage)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DOCUMENT_DEPTH = 32  # the shipped rule set nests 8 deep


def load_document(source: str | bytes | Mapping[str, Any]) -> Any:
    """The loaded form of a submitted document, refused (``RuleSetError``) when it nests deeper
    than ``MAX_DOCUMENT_DEPTH`` or when YAML aliases expand it to more nodes than its text has
    bytes: a few hundred bytes of aliases can otherwise expand to billions of nodes, and deep
    nesting overflows the parser's and the serialiser's recursion limits."""
    if not isinstance(source, str | bytes):
        _check_shape(source, node_limit=None)
        return source
    try:
        loaded = yaml.load(source, Loader=_YAML_LOADER)  # a safe loader
    except yaml.YAMLError as error:
        problem = RuleSetProblem(None, "document", f"not valid YAML/JSON: {error}")
        raise RuleSetError([problem]) from None
    _check_shape(loaded, node_limit=max(len(source), 1024))
    return loaded


def _check_shape(value: Any, node_limit: int | None) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if node_limit is not None and nodes > node_limit:
            message = "YAML aliases expand the document far beyond its size"
            raise RuleSetError([RuleSetProblem(None, "document", message)])
        if depth > MAX_DOCUMENT_DEPTH:
            message = f"nested more than {MAX_DOCUMENT_DEPTH} levels deep"
            raise RuleSetError([RuleSetProblem(None, "document", message)])
        if isinstance(node, str) and "\x00" in node:
            raise RuleSetError([RuleSetProblem(None, "document", "text may not contain NUL")])
        if isinstance(node, int) and not -(2**63) <= node < 2**63:
            message = "integers must fit in 64 bits"
            raise RuleSetError([RuleSetProblem(None, "document", message)])
        if isinstance(node, Mapping):
            for key in node:
                if isinstance(key, str) and "\x00" in key:
                    message = "text may not contain NUL"
                    raise RuleSetError([RuleSetProblem(None, "document", message)])
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _problem_from(raw: Mapping[str, Any], error: Any) -> RuleSetProblem:
    loc = tuple(error["loc"])
    if len(loc) >= 3 and loc[0] == "stages" and loc[2] in _STAGE_TAGS:
        loc = loc[:2] + loc[3:]  # drop the discriminator Pydantic inserts for the stage union
    location = ".".join(str(part) for part in loc) or "document"
    rule_id = None
    if len(loc) >= 4 and loc[0] == "stages" and loc[2] == "rules":
        try:
            candidate = raw["stages"][loc[1]]["rules"][loc[3]].get("id")
            rule_id = candidate if isinstance(candidate, str) else None
        except (KeyError, IndexError, TypeError, AttributeError):
            rule_id = None
    return RuleSetProblem(rule_id, location, error["msg"])


def compile_rule_set(
    source: RuleSetDocument | str | bytes | Mapping[str, Any],
    *,
    version: str | None = None,
) -> CompiledRuleSet:
    """Validate and compile a rule set; raise ``RuleSetError`` listing every problem.

    ``version`` overrides the document's own version label (the service numbers versions).
    """
    document = source if isinstance(source, RuleSetDocument) else parse_document(source)
    problems: list[RuleSetProblem] = []
    explain = _EXPLANATIONS[document.semantics >= 2]
    policies = _compile_policies(document, problems)
    catalogue = build_catalogue(policies)
    _check_stages(document, problems)
    _check_unique_ids(document, problems)
    _check_semantics(document, problems)
    safety: tuple[CompiledSafetyRule, ...] = ()
    consistency: tuple[CompiledContradictionRule, ...] = ()
    information: tuple[CompiledInformationRule, ...] = ()
    domains: tuple[CompiledDomainRule, ...] = ()
    placement: tuple[CompiledPlacementRule, ...] = ()
    feasibility: tuple[CompiledFeasibilityRule, ...] = ()
    default_level, default_reason = LevelOfCare.OUTPATIENT, ""
    for index, stage in enumerate(document.stages):
        ctx = _Context(
            problems,
            types_for_stage(catalogue, Stage(stage.stage)),
            f"stages.{index}",
            explain,
        )
        if isinstance(stage, SafetyStage):
            safety = tuple(
                _safety_rule(ctx, n, rule, document.semantics) for n, rule in enumerate(stage.rules)
            )
            if document.semantics >= 2:
                _check_evidence(ctx, safety)
        elif isinstance(stage, ConsistencyStage):
            consistency = tuple(
                _contradiction_rule(ctx, n, rule) for n, rule in enumerate(stage.rules)
            )
        elif isinstance(stage, InformationStage):
            information = tuple(
                CompiledInformationRule(
                    id=rule.id,
                    description=rule.description,
                    condition=ctx.condition(rule, n),
                    missing=tuple(rule.missing),
                    **_outcomes(Stage.INFORMATION, rule, explain),
                )
                for n, rule in enumerate(stage.rules)
            )
        elif isinstance(stage, DomainStage):
            domains = tuple(
                CompiledDomainRule(
                    id=rule.id,
                    description=rule.description,
                    condition=ctx.condition(rule, n),
                    domain=rule.domain,
                    rating=rule.rating,
                    rank=RATING_RANK[rule.rating],
                    **_outcomes(Stage.DOMAINS, rule, explain),
                )
                for n, rule in enumerate(stage.rules)
            )
        elif isinstance(stage, PlacementStage):
            default_level, default_reason = stage.default_level, stage.default_reason
            placement = tuple(_placement_rule(ctx, n, rule) for n, rule in enumerate(stage.rules))
        else:
            feasibility = tuple(
                _feasibility_rule(ctx, n, rule) for n, rule in enumerate(stage.rules)
            )
    _check_test_references(document, problems)
    if problems:
        raise RuleSetError(problems)
    engine_reasons = _ENGINE_REASONS[document.semantics >= 2]
    not_indicated = {
        level: level_not_indicated(safety, placement, level, frozenset(), engine_reasons)
        for level in LevelOfCare
    }
    later = [r.condition for r in domains] + [r.condition for r in placement]
    later += [r.condition for r in feasibility]
    later += [a.condition for r in feasibility for a in r.accommodations if a.condition]
    reach = answers_read_by_reach(
        [r.condition for r in safety] + [r.condition for r in consistency],
        [r.condition for r in information],
        later,
        catalogue,
    )
    questions = question_paths(catalogue)
    problems += (
        RuleSetProblem(None, where, message)
        for where, message in context_problems(document.context, questions, reach[-1])
    )
    if problems:
        raise RuleSetError(problems)
    read = {
        fact
        for stage in (safety, consistency, information, domains, placement, feasibility)
        for rule in stage
        for fact in rule.condition.facts
    } | {
        fact
        for rule in feasibility
        for accommodation in rule.accommodations
        if accommodation.condition is not None
        for fact in accommodation.condition.facts
    }
    context = frozenset(document.context)
    explained = document.semantics >= 3
    return CompiledRuleSet(
        document=document,
        ref=RuleSetRef(document.key, version or document.version, document_sha256(document)),
        policies=policies,
        catalogue=catalogue,
        safety=safety,
        information=information,
        domains=domains,
        placement=placement,
        default_level=default_level,
        default_reason=default_reason,
        feasibility=feasibility,
        rule_ids=tuple(rule.id for stage in document.stages for rule in stage.rules),
        not_indicated=not_indicated,
        extraction=extraction_plan(read),
        default_decision=explain.reason(None, default_reason),
        default_ruled_out=explain.reason(None, f"Ruled out: {default_reason}"),
        semantics=document.semantics,
        references={
            rule.id: rule.references
            for stage in (safety, consistency, information, domains, placement, feasibility)
            for rule in stage
        },
        consistency=consistency,
        default_exceeded=explain.reason(None, f"Exceeded: {default_reason}"),
        default_deferred=explain.reason(
            None, f"Decided after the emergency evaluation: {default_reason}"
        ),
        questions=questions,
        unread_questions=tuple(q for q in questions if q not in reach[-1] and q not in context),
        context_walk=walk(context, catalogue) if explained else NO_WALK,
        unused_walks=_unused_walks(questions, reach, context, catalogue) if explained else NO_WALKS,
    )


NO_WALKS: Final = (NO_WALK, NO_WALK, NO_WALK)


def _unused_walks(
    questions: tuple[str, ...],
    reach: tuple[frozenset[str], ...],
    context: frozenset[str],
    catalogue: Mapping[str, FactSpec],
) -> tuple[AnswerWalk, AnswerWalk, AnswerWalk]:
    """For each ``Reach``, a walk over the questions neither read by then nor context."""
    first, second, every = (
        walk((q for q in questions if q not in read and q not in context), catalogue)
        for read in reach
    )
    return first, second, every


def _check_semantics(document: RuleSetDocument, problems: list[RuleSetProblem]) -> None:
    """What semantics 3 adds may not appear in an earlier document (it would evaluate
    differently from what its author read)."""
    if document.semantics >= 3:
        return
    needs = f"needs semantics 3 (this document declares {document.semantics})"
    if document.context:
        problems.append(RuleSetProblem(None, "context", f"context answers {needs}"))
    for index, stage in enumerate(document.stages):
        if isinstance(stage, ConsistencyStage):
            problems.append(
                RuleSetProblem(None, f"stages.{index}", f"the consistency stage {needs}")
            )
    for index, case in enumerate(document.tests):
        if case.expect.contradictions is not None:
            where = f"tests.{index}.expect.contradictions"
            problems.append(RuleSetProblem(None, where, f"expecting contradictions {needs}"))


def level_not_indicated(
    safety: tuple[CompiledSafetyRule, ...],
    placement: tuple[CompiledPlacementRule, ...],
    level: LevelOfCare,
    undetermined: frozenset[str] | set[str],
    engine: EngineReasons,
) -> tuple[Reason, ...]:
    """Why ``level`` was not the result: the rules for it that did not fire (or could not be
    evaluated, for the ids in ``undetermined``)."""
    reasons: list[Reason] = []
    if any(rule.override_level is level for rule in safety):
        reasons.append(engine.no_override)
    for rule in placement:
        if rule.level is level:
            reasons.append(rule.not_evaluated if rule.id in undetermined else rule.not_met)
    return tuple(reasons) or (engine.no_rule,)


# A placeholder condition lets compilation go on after an error so every problem is reported.
_NEVER = CompiledCondition("false", lambda facts: False, ())


@dataclass(slots=True)
class _Context:
    problems: list[RuleSetProblem]
    types: Mapping[str, FactType]
    location: str
    explain: Explanations

    def compile(self, rule_id: str, location: str, source: str) -> CompiledCondition:
        try:
            return compile_condition(source, self.types)
        except ExpressionError as error:
            self.problems.append(RuleSetProblem(rule_id, location, str(error)))
            return _NEVER

    def condition(self, rule: RuleBase, position: int) -> CompiledCondition:
        return self.compile(rule.id, f"{self.location}.rules.{position}.when", rule.when)

    def problem(self, rule_id: str, location: str, message: str) -> None:
        self.problems.append(RuleSetProblem(rule_id, f"{self.location}.{location}", message))


def _eliminates(rule: SafetyRule, level: LevelOfCare, semantics: int) -> str:
    """Why an override eliminated the levels below the one it set, in words."""
    if semantics < 3:
        return f"Ruled out by safety override: {rule.description}"
    if level is LevelOfCare.EMERGENCY_EVALUATION:
        return f"Decided after the emergency evaluation: {rule.description}"
    return f"Exceeded: {rule.description}"


def _safety_rule(
    ctx: _Context, position: int, rule: SafetyRule, semantics: int
) -> CompiledSafetyRule:
    condition = ctx.condition(rule, position)
    references = tuple(rule.references)
    if rule.override is not None:
        if rule.override.level not in SAFETY_OVERRIDE_LEVELS:
            ctx.problem(
                rule.id,
                f"rules.{position}.override.level",
                "a safety override must send the person to emergency_evaluation or inpatient",
            )
        return CompiledSafetyRule(
            id=rule.id,
            description=rule.description,
            condition=condition,
            override_level=rule.override.level,
            urgency=rule.override.urgency,
            action=rule.override.action,
            requires=(),
            alert=ctx.explain.alert(
                rule.id,
                rule.override.urgency,
                rule.override.action,
                rule.description,
                True,
                references,
            ),
            eliminates=ctx.explain.reason(
                rule.id, _eliminates(rule, rule.override.level, semantics), references
            ),
            **_outcomes(Stage.SAFETY, rule, ctx.explain),
        )
    assert rule.alert is not None  # the document model requires exactly one outcome
    if rule.alert.urgency is Urgency.ROUTINE:
        ctx.problem(
            rule.id, f"rules.{position}.alert.urgency", "a safety alert must be urgent or emergent"
        )
    return CompiledSafetyRule(
        id=rule.id,
        description=rule.description,
        condition=condition,
        override_level=None,
        urgency=rule.alert.urgency,
        action=rule.alert.action,
        requires=tuple(rule.alert.requires),
        alert=ctx.explain.alert(
            rule.id, rule.alert.urgency, rule.alert.action, rule.description, False, references
        ),
        **_outcomes(Stage.SAFETY, rule, ctx.explain),
    )


def _check_evidence(ctx: _Context, safety: tuple[CompiledSafetyRule, ...]) -> None:
    """Semantics 2: a safety rule fires on its evidence, whatever the person asked for help
    with, so it may not read the presenting concerns (the ``evidence.*`` facts count them among
    other signals)."""
    for position, rule in enumerate(safety):
        if "presenting_concerns" in rule.condition.facts:
            ctx.problem(
                rule.id,
                f"rules.{position}.when",
                "a safety rule fires on its evidence, whatever the presenting concern: read "
                "the evidence.* facts (which count the concern among other signals) instead of "
                "presenting_concerns",
            )


def _contradiction_rule(
    ctx: _Context, position: int, rule: ContradictionRule
) -> CompiledContradictionRule:
    references = tuple(rule.references)
    return CompiledContradictionRule(
        id=rule.id,
        description=rule.description,
        condition=ctx.condition(rule, position),
        confirm=rule.confirm,
        contradiction=Contradiction(rule.id, rule.description, rule.confirm, references),
        **_outcomes(Stage.CONSISTENCY, rule, ctx.explain),
    )


def _placement_rule(ctx: _Context, position: int, rule: PlacementRule) -> CompiledPlacementRule:
    references = tuple(rule.references)
    reason = ctx.explain.reason
    return CompiledPlacementRule(
        id=rule.id,
        description=rule.description,
        condition=ctx.condition(rule, position),
        level=rule.level,
        rank=LEVEL_RANK[rule.level],
        urgency=rule.urgency,
        conditions=tuple(
            PlacementCondition(c.code, c.description, rule.id) for c in rule.conditions
        ),
        not_met=reason(rule.id, f"Not met: {rule.description}", references),
        not_evaluated=reason(
            rule.id, f"Could not be evaluated (information missing): {rule.description}", references
        ),
        ruled_out=reason(rule.id, f"Ruled out: {rule.description}", references),
        exceeded=reason(rule.id, f"Exceeded: {rule.description}", references),
        deferred=reason(
            rule.id, f"Decided after the emergency evaluation: {rule.description}", references
        ),
        **_outcomes(Stage.PLACEMENT, rule, ctx.explain),
    )


def _feasibility_rule(
    ctx: _Context, position: int, rule: FeasibilityRule
) -> CompiledFeasibilityRule:
    where = f"{ctx.location}.rules.{position}.barrier.accommodations"
    accommodations = tuple(
        CompiledAccommodation(
            Accommodation(a.code, a.description),
            None if a.when is None else ctx.compile(rule.id, f"{where}.{n}.when", a.when),
        )
        for n, a in enumerate(rule.barrier.accommodations)
    )
    return CompiledFeasibilityRule(
        id=rule.id,
        description=rule.description,
        condition=ctx.condition(rule, position),
        code=rule.barrier.code,
        barrier_description=rule.barrier.description,
        accommodations=accommodations,
        **_outcomes(Stage.FEASIBILITY, rule, ctx.explain),
    )


def _check_stages(document: RuleSetDocument, problems: list[RuleSetProblem]) -> None:
    stages = [Stage(stage.stage) for stage in document.stages]
    order = {stage: rank for rank, stage in enumerate(Stage)}
    for index, (before, after) in enumerate(zip(stages, stages[1:], strict=False), start=1):
        if order[after] <= order[before]:
            expected = " → ".join(stage.value for stage in Stage)
            problems.append(
                RuleSetProblem(
                    None,
                    f"stages.{index}",
                    f"stage '{after.value}' is out of order after '{before.value}' (each stage "
                    f"at most once, in the order {expected})",
                )
            )
    for required in REQUIRED_STAGES:
        if required not in stages:
            problems.append(
                RuleSetProblem(None, "stages", f"the '{required.value}' stage is required")
            )


def _check_unique_ids(document: RuleSetDocument, problems: list[RuleSetProblem]) -> None:
    seen: set[str] = set()
    for index, stage in enumerate(document.stages):
        for position, rule in enumerate(stage.rules):
            if rule.id in seen:
                problems.append(
                    RuleSetProblem(
                        rule.id, f"stages.{index}.rules.{position}.id", "duplicate rule id"
                    )
                )
            seen.add(rule.id)
    names = [case.name for case in document.tests]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(RuleSetProblem(None, "tests", f"duplicate test case name '{name}'"))


def _check_test_references(document: RuleSetDocument, problems: list[RuleSetProblem]) -> None:
    rule_ids = {rule.id for stage in document.stages for rule in stage.rules}
    consistency_ids = {
        rule.id
        for stage in document.stages
        if isinstance(stage, ConsistencyStage)
        for rule in stage.rules
    }
    barrier_codes = {
        rule.barrier.code
        for stage in document.stages
        if isinstance(stage, FeasibilityStage)
        for rule in stage.rules
    }
    condition_codes = {
        c.code
        for stage in document.stages
        if isinstance(stage, PlacementStage)
        for rule in stage.rules
        for c in rule.conditions
    }
    for index, case in enumerate(document.tests):
        where = f"tests.{index} ('{case.name}')"
        if case.extends is not None and case.extends not in document.fixtures:
            problems.append(RuleSetProblem(None, where, f"unknown fixture '{case.extends}'"))
        expect = case.expect
        for rule_id in (*expect.fired, *expect.not_fired):
            if rule_id not in rule_ids:
                problems.append(RuleSetProblem(None, where, f"expects unknown rule '{rule_id}'"))
        problems.extend(
            RuleSetProblem(None, where, f"expects unknown consistency rule '{rule_id}'")
            for rule_id in expect.contradictions or ()
            if rule_id not in consistency_ids
        )
        for code in expect.barriers or ():
            if code not in barrier_codes:
                problems.append(RuleSetProblem(None, where, f"expects unknown barrier '{code}'"))
        for code in expect.conditions or ():
            if code not in condition_codes:
                problems.append(RuleSetProblem(None, where, f"expects unknown condition '{code}'"))
        if expect.no_level and expect.level is not None:
            problems.append(RuleSetProblem(None, where, "expects both a level and no level"))


def _compile_policies(
    document: RuleSetDocument, problems: list[RuleSetProblem]
) -> dict[InstrumentId, InstrumentPolicy]:
    policies = dict(DEFAULT_POLICIES)
    for instrument, override in document.instruments.items():
        location = f"instruments.{instrument.value}"
        policy = _compile_policy(instrument, override, location, problems)
        if policy is not None:
            policies[instrument] = policy
    return policies


def _compile_policy(
    instrument: InstrumentId,
    override: InstrumentPolicyDocument,
    location: str,
    problems: list[RuleSetProblem],
) -> InstrumentPolicy | None:
    spec = SPECS[instrument]
    if spec.kind is AnswerKind.CATEGORICAL:
        problems.append(RuleSetProblem(None, location, f"{spec.title} has no adjustable cut-offs"))
        return None
    count = len(problems)
    policy = _cut_offs(instrument, override, DEFAULT_POLICIES[instrument], location, problems)
    if override.adolescent is not None:
        where = f"{location}.adolescent"
        adolescent = _cut_offs(instrument, override.adolescent, policy, where, problems)
        adult_labels = [band.label for band in policy.bands]
        labels = [band.label for band in adolescent.bands]
        if labels != [label for label in adult_labels if label in labels]:
            problems.append(
                RuleSetProblem(
                    None,
                    f"{where}.bands",
                    f"adolescent {spec.title} bands use the instrument's band labels, in their "
                    f"order ({', '.join(adult_labels) or 'it has none'})",
                )
            )
        policy = replace(policy, adolescent=adolescent)
    return None if len(problems) > count else policy


def _cut_offs(
    instrument: InstrumentId,
    override: InstrumentPolicyDocument | PopulationPolicyDocument,
    base: InstrumentPolicy,
    location: str,
    problems: list[RuleSetProblem],
) -> InstrumentPolicy:
    """``base`` with the bands and threshold ``override`` gives, each checked."""
    spec = SPECS[instrument]
    bands = base.bands
    if override.bands is not None:
        bands = tuple(Band(b.label, b.min, b.max) for b in override.bands)
        _check_bands(spec, bands, location, problems)
    positive_at, by_sex = _thresholds(instrument, override, base, location, problems)
    _check_threshold_range(spec, (positive_at, *(by_sex or {}).values()), location, problems)
    return InstrumentPolicy(bands=bands, positive_at=positive_at, positive_at_by_sex=by_sex)


def _check_bands(
    spec: InstrumentSpec, bands: tuple[Band, ...], location: str, problems: list[RuleSetProblem]
) -> None:
    """Bands must be ascending and contiguous over the whole score range, with unique labels.
    Only the first gap or overlap is reported: every band after it would be off too."""
    low, high = spec.total_range
    expected_next = low
    for n, band in enumerate(bands):
        if band.minimum != expected_next or band.maximum < band.minimum:
            problems.append(
                RuleSetProblem(
                    None,
                    f"{location}.bands.{n}",
                    f"{spec.title} bands must be ascending and contiguous from {low} to "
                    f"{high}; band '{band.label}' should start at {expected_next}",
                )
            )
            break
        expected_next = band.maximum + 1
    else:
        if bands and expected_next != high + 1:
            problems.append(
                RuleSetProblem(
                    None,
                    f"{location}.bands",
                    f"{spec.title} bands must end at the maximum score {high}",
                )
            )
    labels = [band.label for band in bands]
    if len(set(labels)) != len(labels):
        problems.append(RuleSetProblem(None, f"{location}.bands", "band labels must be unique"))


def _thresholds(
    instrument: InstrumentId,
    override: InstrumentPolicyDocument | PopulationPolicyDocument,
    base: InstrumentPolicy,
    location: str,
    problems: list[RuleSetProblem],
) -> tuple[int | None, Mapping[ScoringSex, int] | None]:
    """The positive-screen threshold, or the thresholds by sex, that ``override`` gives (those
    of ``base`` when it gives none, or gives sex-specific ones that cannot be used)."""
    positive_at, by_sex = base.positive_at, base.positive_at_by_sex
    if isinstance(override.positive_at, int):
        return override.positive_at, None
    if not isinstance(override.positive_at, dict):
        return positive_at, by_sex
    if instrument is not InstrumentId.AUDIT_C:
        problems.append(
            RuleSetProblem(
                None, f"{location}.positive_at", "only AUDIT-C has sex-specific cut-offs"
            )
        )
    elif set(override.positive_at) != set(ScoringSex):
        problems.append(
            RuleSetProblem(
                None,
                f"{location}.positive_at",
                "give a cut-off for each of female, male and unknown",
            )
        )
    else:
        by_sex, positive_at = dict(override.positive_at), None
        # An unknown sex gets the lowest cut-off, so that no positive screen is missed.
        if by_sex[ScoringSex.UNKNOWN] > min(by_sex[ScoringSex.FEMALE], by_sex[ScoringSex.MALE]):
            problems.append(
                RuleSetProblem(
                    None,
                    f"{location}.positive_at.unknown",
                    "the cut-off for unknown sex must be the conservative (lowest) one",
                )
            )
    return positive_at, by_sex


def _check_threshold_range(
    spec: InstrumentSpec,
    thresholds: tuple[int | None, ...],
    location: str,
    problems: list[RuleSetProblem],
) -> None:
    """Every threshold given must lie within the instrument's score range."""
    low, high = spec.total_range
    for threshold in thresholds:
        if threshold is not None and not low <= threshold <= high:
            problems.append(
                RuleSetProblem(
                    None,
                    f"{location}.positive_at",
                    f"{spec.title} cut-off must lie within the score range {low}-{high}",
                )
            )


__all__ = [
    "CompiledRuleSet",
    "RuleSetError",
    "RuleSetProblem",
    "canonical_json",
    "compile_rule_set",
    "document_sha256",
    "parse_document",
]
