"""Specification of the rule-condition language (app.engine.expressions)."""

from __future__ import annotations

import itertools
import operator
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import FunctionType, MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.expressions import (
    CompiledCondition,
    ExpressionError,
    FactKind,
    FactType,
    compile_condition,
)

TIERS = ("none", "low", "moderate", "high")

CATALOGUE: dict[str, FactType] = {
    "phq9.total": FactType.number(),
    "gad7.total": FactType.number(),
    "cssrs.tier": FactType.enum(TIERS, ordered=True),
    "cssrs.previous_tier": FactType.enum(TIERS, ordered=True),
    "acuity.level": FactType.enum(("1", "2", "3"), ordered=True),
    "logistics.transport": FactType.enum(("none", "car", "bus", "walk")),
    "insurance.plan": FactType.enum(("medicaid", "private")),
    "patient.language": FactType.string(),
    "safety.recent_violence": FactType.boolean(),
    "safety.plan_in_place": FactType.boolean(),
    "housing.unstable": FactType.boolean(),
    "domains.flags": FactType.list_of(("psychosis", "mania", "eating", "low")),
    "supports.contacts": FactType.list_of(),
}


class Transport(StrEnum):
    NONE = "none"
    CAR = "car"


def run(source: str, facts: Mapping[str, object]) -> bool | None:
    return compile_condition(source, CATALOGUE).evaluate(facts)


def error(source: str, catalogue: Mapping[str, FactType] = CATALOGUE) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_condition(source, catalogue)
    return info.value


# --- Parsing and precedence ---------------------------------------------------------

BOOLS = (True, False)


@pytest.mark.parametrize(("p", "q", "r"), list(itertools.product(BOOLS, repeat=3)))
def test_and_binds_tighter_than_or(p: bool, q: bool, r: bool) -> None:
    facts = {"safety.recent_violence": p, "safety.plan_in_place": q, "housing.unstable": r}
    source = "safety.recent_violence || safety.plan_in_place && housing.unstable"
    assert run(source, facts) is (p or (q and r))
    source = "safety.recent_violence && safety.plan_in_place || housing.unstable"
    assert run(source, facts) is ((p and q) or r)


@pytest.mark.parametrize(("p", "q"), list(itertools.product(BOOLS, repeat=2)))
def test_not_binds_tighter_than_and(p: bool, q: bool) -> None:
    facts = {"safety.recent_violence": p, "safety.plan_in_place": q}
    assert run("!safety.recent_violence && safety.plan_in_place", facts) is ((not p) and q)
    assert run("!(safety.recent_violence && safety.plan_in_place)", facts) is (not (p and q))


@pytest.mark.parametrize(
    "source",
    [
        "1 + 2 * 3 == 7",
        "(1 + 2) * 3 == 9",
        "2 * 3 + 1 == 7",
        "10 - 4 - 3 == 3",
        "10 - (4 - 3) == 9",
        "-2 * 3 == -6",
        "2 - -3 == 5",
        "--4 == 4",
        "-(1 + 2) == -3",
        "1.5 * 2 == 3",
        "0.1 + 0.2 > 0.3",
        "1 + 2 < 4 && 2 * 2 >= 4",
        "!(1 > 2)",
        "true",
        "!false",
        "true == !false",
    ],
)
def test_constant_arithmetic_and_logic(source: str) -> None:
    assert run(source, {}) is True


def test_arithmetic_on_facts() -> None:
    facts = {"phq9.total": 15, "gad7.total": 4}
    assert run("phq9.total - gad7.total * 2 >= 7", facts) is True
    assert run("phq9.total - gad7.total * 2 >= 8", facts) is False
    assert run("-phq9.total < 0", facts) is True


def test_whitespace_and_newlines_do_not_matter() -> None:
    facts = {"phq9.total": 15, "logistics.transport": "none"}
    assert run('phq9.total>=15&&logistics.transport=="none"', facts) is True
    assert run('\n  phq9.total >= 15\n  && logistics.transport == "none"\n', facts) is True


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r'patient.language == "say \"hi\""', 'say "hi"'),
        (r"patient.language == 'it\'s'", "it's"),
        (r'patient.language == "back\\slash"', "back\\slash"),
        (r'patient.language == "two\nlines"', "two\nlines"),
        ("patient.language == 'double \" inside single'", 'double " inside single'),
    ],
)
def test_string_literals_and_escapes(source: str, value: str) -> None:
    assert run(source, {"patient.language": value}) is True
    assert run(source, {"patient.language": value + "x"}) is False


def test_trailing_comma_in_list_is_allowed() -> None:
    assert run('logistics.transport in ["car", "bus",]', {"logistics.transport": "bus"}) is True


# --- Syntax errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("phq9.total >= 15 & gad7.total > 3", 17, "use '&&'"),
        ("phq9.total >= 15 | gad7.total > 3", 17, "use '||'"),
        ("phq9.total = 15", 11, "use '=='"),
        ("phq9.total >= 15 $", 17, "unexpected character '$'"),
        ("phq9.total / 2 > 3", 11, "division is not supported"),
        ("phq9.total >= 15 15", 17, "unexpected 15"),
        ("phq9.total >= 15 )", 17, "unexpected ')'"),
        ("(phq9.total >= 15", 17, "expected ')' to close the '(' at column 0"),
        ("phq9.total >=", 13, "found the end of the condition"),
        ("phq9.total >= 15 &&", 19, "found the end of the condition"),
        ("phq9.total < gad7.total < 3", 24, "cannot be chained"),
        ('cssrs.tier == "low" == true', 20, "cannot be chained"),
        ("phq9.total >= 15 and gad7.total > 3", 17, "write '&&' for 'and'"),
        ("foo(phq9.total)", 0, "unknown function 'foo'"),
        ("hass(phq9.total)", 0, "did you mean 'has'?"),
        ("domains.flags.size() > 1", 0, "write size(domains.flags)"),
        ("has(phq9.total + 1)", 15, "has() takes one fact name"),
        ('has("phq9.total")', 4, "has() takes one fact name"),
        ("has()", 0, "has() takes one fact name"),
        ("has(phq9.total, gad7.total)", 0, "has() takes one fact name"),
        ("size() > 1", 0, "size() takes one list fact"),
        ("phq9.total == null", 14, "there is no null"),
        ('patient.language == "abc', 20, "string is not closed"),
        ('patient.language == "abc\ndef"', 20, "string is not closed"),
        (r'patient.language == "a\qb"', 22, "unknown escape '\\q'"),
        ("phq9.total > 15abc", 13, "malformed number '15a'"),
        ("phq9.total > 1.2.3", 13, "malformed number"),
        ("phq9.total > 1e5", 13, "malformed number"),
        ("phq9. > 1", 4, "'.' must be followed by a name"),
        ("phq9.total > .5", 13, "unexpected character '.'"),
        ("phq9.total > 99999999999999999999", 13, "too large"),
        ("phq9.total éé 3", 11, "unexpected character 'é'"),
        ("logistics.transport in []", 23, "an empty list [] would never match anything"),
        ('logistics.transport in ["car", 1]', 31, "only strings or only numbers"),
        ("logistics.transport in [phq9.total]", 24, "only literal strings or numbers"),
        ("safety.recent_violence in [true]", 27, "only literal strings or numbers"),
        ("logistics.transport in [", 24, "found the end of the condition"),
        ("(" * 40 + "true" + ")" * 40, 32, "nested too deeply"),
        ("!" * 40 + "true", 32, "nested too deeply"),
    ],
)
def test_syntax_errors_name_the_problem_and_its_column(
    source: str, column: int, fragment: str
) -> None:
    problem = error(source)
    assert fragment in problem.message
    assert problem.position == column


def test_long_operator_chains_are_bounded() -> None:
    assert run(" + ".join(["1"] * 60) + " == 60", {}) is True
    source = " + ".join(["1"] * 100) + " > 0"
    problem = error(source)
    assert "nested too deeply" in problem.message
    assert problem.position is not None
    assert 0 < problem.position < len(source)
    flat = " && ".join(["safety.recent_violence"] * 500)  # && chains are flat, not deep
    assert run(flat, {"safety.recent_violence": True}) is True


# --- Static type errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column", "fragments"),
    [
        (
            "phq9.totl >= 15",
            0,
            ("unknown fact 'phq9.totl'", "(did you mean 'phq9.total'?)"),
        ),
        ("safety.plan_in_place && has(cssrs.teir)", 28, ("unknown fact 'cssrs.teir'",)),
        ("phq9.total + 1", 0, ("a condition must be true or false", "is a number")),
        ("cssrs.tier", 0, ("a condition must be true or false", "is a string")),
        ("domains.flags", 0, ("a condition must be true or false", "is a list")),
        (
            "phq9.total && safety.recent_violence",
            0,
            ("'&&'", "'phq9.total' is a number"),
        ),
        (
            "safety.recent_violence || cssrs.tier",
            26,
            ("'||'", "'cssrs.tier' is a string"),
        ),
        ("!phq9.total", 0, ("'!' needs a true/false value", "'phq9.total' is a number")),
        ("-cssrs.tier > 1", 0, ("'-' needs a number", "'cssrs.tier' is a string")),
        (
            'phq9.total == "15"',
            11,
            ("'=='", "'phq9.total' is a number", '"15" is a string'),
        ),
        (
            "safety.recent_violence != 1",
            23,
            ("'!='", "'safety.recent_violence' is true/false", "1 is a number"),
        ),
        (
            'cssrs.tier == "hihg"',
            14,
            ("\"hihg\" is not a value of 'cssrs.tier'; allowed: none, low, moderate, high",),
        ),
        ('"hihg" != cssrs.tier', 0, ("\"hihg\" is not a value of 'cssrs.tier'",)),
        (
            "logistics.transport == insurance.plan",
            20,
            ("'logistics.transport' and 'insurance.plan' share no values", "always be false"),
        ),
        (
            'domains.flags == "mania"',
            14,
            ("'=='", "cannot compare a list", "'domains.flags' is a list", "'in'"),
        ),
        (
            'logistics.transport < "car"',
            0,
            ("cannot order 'logistics.transport': its values have no order",),
        ),
        (
            'patient.language >= "en"',
            0,
            ("cannot order 'patient.language': its values have no order",),
        ),
        ('"a" < "b"', 4, ("'<' cannot order two strings",)),
        (
            "cssrs.tier < acuity.level",
            11,
            ("cannot order 'cssrs.tier' against 'acuity.level'", "different value lists"),
        ),
        ('cssrs.tier >= "severe"', 14, ("\"severe\" is not a value of 'cssrs.tier'",)),
        (
            "safety.recent_violence < true",
            23,
            ("'<'", "'safety.recent_violence' is true/false", "true is true/false"),
        ),
        ('phq9.total < "high"', 11, ("'<'", "'phq9.total' is a number", '"high" is a string')),
        ("domains.flags > 1", 14, ("'>'", "'domains.flags' is a list", "1 is a number")),
        ('phq9.total in ["a"]', 11, ("'in'", "'phq9.total' is a number", "holds strings")),
        ('"a" in [1, 2]', 4, ("'in'", '"a" is a string', "holds numbers")),
        (
            'logistics.transport in ["car", "plane"]',
            31,
            ("\"plane\" is not a value of 'logistics.transport'; allowed: none, car, bus, walk",),
        ),
        ('"manic" in domains.flags', 0, ("\"manic\" is not a value of 'domains.flags'",)),
        ('"car" in logistics.transport', 6, ("'in' needs a list", "'logistics.transport' is a")),
        ("phq9.total in domains.flags", 11, ("'in'", "'phq9.total' is a number")),
        (
            "insurance.plan in domains.flags",
            15,
            ("'insurance.plan' and 'domains.flags' share no values",),
        ),
        (
            "domains.flags in domains.flags",
            14,
            ("'in' looks for a string in a list", "'domains.flags' is a list"),
        ),
        ('["a"] in domains.flags', 0, ("a list of values can only follow 'in'",)),
        (
            "phq9.total + cssrs.tier > 1",
            11,
            ("'+' needs two numbers", "'cssrs.tier' is a string"),
        ),
        ("size(phq9.total) > 1", 5, ("size() needs a list", "'phq9.total' is a number")),
        ('size(["a"]) > 0', 5, ("a list of values can only follow 'in'",)),
        ('["a"] == cssrs.tier', 0, ("a list of values can only follow 'in'",)),
        ("phq9.total == true", 11, ("'=='", "'phq9.total' is a number", "true is true/false")),
        ("has(phq9.total) + 1 > 0", 16, ("'+'", "has() is true/false")),
    ],
)
def test_type_errors_name_the_operands_and_the_column(
    source: str, column: int, fragments: tuple[str, ...]
) -> None:
    problem = error(source)
    for fragment in fragments:
        assert fragment in problem.message
    assert problem.position == column


def test_unknown_fact_without_a_close_match_has_no_suggestion() -> None:
    assert error("zzz.qqq").message == "unknown fact 'zzz.qqq'"


@pytest.mark.parametrize(
    "source",
    [
        "logistics.transport == cssrs.tier",  # both allow "none"
        "patient.language == cssrs.tier",  # free text may hold anything
        'patient.language == "anything at all"',
        "cssrs.tier < cssrs.previous_tier",  # same ordered list
        "cssrs.tier in domains.flags",  # both allow "low"
        'patient.language in domains.flags && "x" in supports.contacts',
        '"a" == "b" || 1 in [1, 2] || "x" in ["x"]',
    ],
)
def test_well_typed_conditions_compile(source: str) -> None:
    assert compile_condition(source, CATALOGUE).source == source


def test_expression_error_format() -> None:
    problem = error("phq9.total >= 15 && phq9.totl > 3")
    assert isinstance(problem, ValueError)
    assert problem.position == 20
    assert str(problem) == ("column 20: unknown fact 'phq9.totl' (did you mean 'phq9.total'?)")
    assert str(ExpressionError("no position")) == "no position"
    assert ExpressionError("no position").position is None


# --- Three-valued logic -----------------------------------------------------------------

T, F, U = True, False, None
TRUTH = (T, F, U)
AND_TABLE = {
    (T, T): T,
    (T, F): F,
    (T, U): U,
    (F, T): F,
    (F, F): F,
    (F, U): F,
    (U, T): U,
    (U, F): F,
    (U, U): U,
}
OR_TABLE = {
    (T, T): T,
    (T, F): T,
    (T, U): T,
    (F, T): T,
    (F, F): F,
    (F, U): U,
    (U, T): T,
    (U, F): U,
    (U, U): U,
}
NOT_TABLE = {T: F, F: T, U: U}


def bool_facts(*values: bool | None, omit_unknown: bool = False) -> dict[str, object]:
    paths = ("safety.recent_violence", "safety.plan_in_place", "housing.unstable")
    return {
        path: value
        for path, value in zip(paths, values, strict=False)
        if not (omit_unknown and value is None)
    }


def score_facts(*values: bool | None) -> dict[str, object]:
    """Numbers that make `phq9.total >= 10` / `gad7.total >= 10` true, false or unknown."""
    scores = {True: 12, False: 3, None: None}
    return {"phq9.total": scores[values[0]], "gad7.total": scores[values[1]]}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(TRUTH, repeat=2)))
@pytest.mark.parametrize("omit_unknown", [False, True])
def test_and_or_truth_tables_on_bool_facts(
    a: bool | None, b: bool | None, omit_unknown: bool
) -> None:
    facts = bool_facts(a, b, omit_unknown=omit_unknown)
    assert run("safety.recent_violence && safety.plan_in_place", facts) is AND_TABLE[a, b]
    assert run("safety.recent_violence || safety.plan_in_place", facts) is OR_TABLE[a, b]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(TRUTH, repeat=2)))
def test_and_or_truth_tables_on_comparisons(a: bool | None, b: bool | None) -> None:
    facts = score_facts(a, b)
    assert run("phq9.total >= 10 && gad7.total >= 10", facts) is AND_TABLE[a, b]
    assert run("phq9.total >= 10 || gad7.total >= 10", facts) is OR_TABLE[a, b]


@pytest.mark.parametrize(("a", "b", "c"), list(itertools.product(TRUTH, repeat=3)))
def test_chains_of_three_follow_the_tables(a: bool | None, b: bool | None, c: bool | None) -> None:
    facts = bool_facts(a, b, c)
    chain_and = "safety.recent_violence && safety.plan_in_place && housing.unstable"
    chain_or = "safety.recent_violence || safety.plan_in_place || housing.unstable"
    nested_and = "safety.recent_violence && (safety.plan_in_place && housing.unstable)"
    assert run(chain_and, facts) is AND_TABLE[AND_TABLE[a, b], c]
    assert run(nested_and, facts) is AND_TABLE[AND_TABLE[a, b], c]
    assert run(chain_or, facts) is OR_TABLE[OR_TABLE[a, b], c]


@pytest.mark.parametrize("a", TRUTH)
def test_not_truth_table(a: bool | None) -> None:
    assert run("!safety.recent_violence", bool_facts(a)) is NOT_TABLE[a]
    assert run("!(phq9.total >= 10)", score_facts(a, None)) is NOT_TABLE[a]
    assert run("!!safety.recent_violence", bool_facts(a)) is a


@pytest.mark.parametrize(
    "source",
    [
        "phq9.total >= 15",
        "15 <= phq9.total",
        "phq9.total == 15",
        "phq9.total + 1 > 3",
        "-phq9.total < 0",
        "phq9.total == gad7.total",
        "gad7.total == phq9.total",
        "phq9.total in [1, 2]",
        'logistics.transport == "car"',
        'logistics.transport in ["car"]',
        'cssrs.tier >= "low"',
        "cssrs.tier < cssrs.previous_tier",
        '"mania" in domains.flags',
        "cssrs.tier in domains.flags",
        "size(domains.flags) > 0",
        "safety.recent_violence == true",
    ],
)
def test_comparisons_with_an_unknown_operand_are_unknown(source: str) -> None:
    known: dict[str, object] = {
        "phq9.total": 20,
        "gad7.total": 20,
        "logistics.transport": "car",
        "cssrs.tier": "high",
        "cssrs.previous_tier": "high",
        "domains.flags": ("mania", "low"),
        "safety.recent_violence": True,
    }
    assert run(source, known) is not None
    for path in compile_condition(source, CATALOGUE).facts:
        assert run(source, {**known, path: None}) is None
        assert run(source, {k: v for k, v in known.items() if k != path}) is None


# --- Ordered values, `in`, has(), size() ----------------------------------------------

ORDER_TESTS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@pytest.mark.parametrize(
    ("op", "value", "bound"), list(itertools.product(ORDER_TESTS, TIERS, TIERS))
)
def test_ordered_values_compare_by_position(op: str, value: str, bound: str) -> None:
    expected = ORDER_TESTS[op](TIERS.index(value), TIERS.index(bound))
    assert run(f'cssrs.tier {op} "{bound}"', {"cssrs.tier": value}) is expected
    assert run(f'"{value}" {op} cssrs.tier', {"cssrs.tier": bound}) is expected
    facts = {"cssrs.tier": value, "cssrs.previous_tier": bound}
    assert run(f"cssrs.tier {op} cssrs.previous_tier", facts) is expected


def test_ordered_comparison_is_not_alphabetical() -> None:
    # Alphabetically "high" < "low"; by the declared order it is the other way round.
    assert run('cssrs.tier > "low"', {"cssrs.tier": "high"}) is True
    assert run('cssrs.tier < "moderate"', {"cssrs.tier": "none"}) is True


def test_ordered_value_outside_the_allowed_list_is_unknown() -> None:
    assert run('cssrs.tier >= "low"', {"cssrs.tier": "extreme"}) is None
    facts = {"cssrs.tier": "extreme", "cssrs.previous_tier": "low"}
    assert run("cssrs.tier > cssrs.previous_tier", facts) is None


def test_string_enum_members_work_as_values() -> None:
    assert run('logistics.transport == "car"', {"logistics.transport": Transport.CAR}) is True
    assert run('logistics.transport in ["none"]', {"logistics.transport": Transport.NONE}) is True

    class Tier(StrEnum):
        LOW = "low"
        HIGH = "high"

    assert run('cssrs.tier > "low"', {"cssrs.tier": Tier.HIGH}) is True
    facts = {"cssrs.tier": Tier.LOW, "domains.flags": ("low",)}
    assert run("cssrs.tier in domains.flags", facts) is True


@pytest.mark.parametrize(
    ("value", "expected"), [("car", True), ("bus", True), ("none", False), (None, None)]
)
def test_value_in_list_literal(value: str | None, expected: bool | None) -> None:
    assert run('logistics.transport in ["car", "bus"]', {"logistics.transport": value}) is expected


@pytest.mark.parametrize(("value", "expected"), [(27, True), (27.0, True), (26, False), (-1, True)])
def test_number_in_list_literal(value: float, expected: bool) -> None:
    assert run("phq9.total in [0, 27, -1, 2.5]", {"phq9.total": value}) is expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("mania", "eating"), True),
        (frozenset({"mania"}), True),
        (("eating",), False),
        ((), False),
        (None, None),
    ],
)
def test_value_in_list_fact(flags: object, expected: bool | None) -> None:
    assert run('"mania" in domains.flags', {"domains.flags": flags}) is expected
    facts = {"domains.flags": flags, "cssrs.tier": "low"}
    assert run("cssrs.tier in domains.flags", facts) is (
        None if flags is None else "low" in flags  # type: ignore[operator]
    )


def test_has_is_never_unknown() -> None:
    assert run("has(cssrs.tier)", {"cssrs.tier": "none"}) is True
    assert run("has(cssrs.tier)", {"cssrs.tier": None}) is False
    assert run("has(cssrs.tier)", {}) is False
    assert run("!has(cssrs.tier)", {}) is True
    assert run("!has(cssrs.tier)", {"cssrs.tier": "none"}) is False
    assert run("has(safety.recent_violence)", {"safety.recent_violence": False}) is True
    assert run("has(phq9.total)", {"phq9.total": 0}) is True


def test_has_guard_turns_unknown_into_false() -> None:
    source = "has(phq9.total) && phq9.total >= 15"
    assert run(source, {}) is False
    assert run("phq9.total >= 15", {}) is None
    assert run(source, {"phq9.total": 20}) is True
    assert run("!has(phq9.total) || phq9.total >= 15", {}) is True


@pytest.mark.parametrize(
    ("contacts", "expected"),
    [(("a", "b"), 2), (frozenset({"a", "b", "c"}), 3), ((), 0), (None, None)],
)
def test_size_of_a_list_fact(contacts: object, expected: int | None) -> None:
    for count in range(4):
        result = run(f"size(supports.contacts) == {count}", {"supports.contacts": contacts})
        assert result is (None if expected is None else count == expected)


# --- Referenced facts, API shapes ---------------------------------------------------


def test_facts_in_order_of_first_appearance_without_duplicates() -> None:
    source = (
        "phq9.total >= 15 && (has(cssrs.tier) || phq9.total > 20)"
        ' && "mania" in domains.flags && cssrs.tier >= "low"'
    )
    compiled = compile_condition(source, CATALOGUE)
    assert isinstance(compiled, CompiledCondition)
    assert compiled.source == source
    assert compiled.facts == ("phq9.total", "cssrs.tier", "domains.flags")
    assert compile_condition("1 < 2", CATALOGUE).facts == ()


def test_fact_type_constructors() -> None:
    assert FactType.boolean() == FactType(FactKind.BOOL)
    assert FactType.number() == FactType(FactKind.NUMBER)
    assert FactType.string() == FactType(FactKind.STRING)
    assert FactType.enum(["a", "b"], ordered=True) == FactType(FactKind.STRING, ("a", "b"), True)
    assert FactType.list_of(["x"]) == FactType(FactKind.LIST, ("x",))
    assert FactType.list_of() == FactType(FactKind.LIST)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FactType(FactKind.NUMBER, ("a",)), "cannot have allowed values"),
        (lambda: FactType(FactKind.STRING, ordered=True), "can be ordered"),
        (lambda: FactType(FactKind.LIST, ("a",), ordered=True), "can be ordered"),
        (lambda: FactType.enum([]), "non-empty"),
        (lambda: FactType.enum(["a", "a"]), "repeat"),
        (lambda: FactType(FactKind.STRING, "abc"), "not one string"),  # type: ignore[arg-type]
    ],
)
def test_fact_type_rejects_inconsistent_definitions(
    make: Callable[[], FactType], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# --- Property tests: random well-typed trees against a reference interpreter --------------

MODES = ("none", "car", "bus")
ITEMS = ("low", "car", "psychosis")
PROPERTY_FACTS: dict[str, FactType] = {
    "b.x": FactType.boolean(),
    "b.y": FactType.boolean(),
    "n.x": FactType.number(),
    "n.y": FactType.number(),
    "t.x": FactType.enum(TIERS, ordered=True),
    "t.y": FactType.enum(TIERS, ordered=True),
    "u.x": FactType.enum(MODES),
    "l.x": FactType.list_of(ITEMS),
}


@dataclass(frozen=True)
class Lit:
    value: bool | int | float | str


@dataclass(frozen=True)
class Ref:
    path: str


@dataclass(frozen=True)
class LitList:
    values: tuple[int | float | str, ...]


@dataclass(frozen=True)
class Fn:
    name: str
    arg: Ref


@dataclass(frozen=True)
class Un:
    op: str
    operand: Tree


@dataclass(frozen=True)
class Bin:
    op: str
    left: Tree
    right: Tree


Tree = Lit | Ref | LitList | Fn | Un | Bin

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def reference(tree: Tree, facts: Mapping[str, object]) -> object:
    """A deliberately naive interpreter of the documented semantics."""
    if isinstance(tree, Lit):
        return tree.value
    if isinstance(tree, Ref):
        return facts.get(tree.path)
    if isinstance(tree, LitList):
        return tree.values
    if isinstance(tree, Fn):
        return reference_call(tree, facts)
    if isinstance(tree, Un):
        value = reference(tree.operand, facts)
        if value is None:
            return None
        return (not value) if tree.op == "!" else -value  # type: ignore[operator]
    left, right = reference(tree.left, facts), reference(tree.right, facts)
    if tree.op in ("&&", "||"):
        return reference_logic(tree.op, left, right)
    if left is None or right is None:
        return None
    return reference_operation(tree.op, left, right)


def reference_call(tree: Fn, facts: Mapping[str, object]) -> object:
    """has() is never unknown; size() of an unknown list is unknown."""
    value = facts.get(tree.arg.path)
    if tree.name == "has":
        return value is not None
    return None if value is None else len(value)  # type: ignore[arg-type]


def reference_logic(op: str, left: object, right: object) -> bool | None:
    """Three-valued ``&&`` and ``||``: a false (true) operand decides whatever the other is."""
    if op == "&&":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def reference_operation(op: str, left: object, right: object) -> object:
    """Arithmetic, ``in`` or a comparison of two known values; tiers are ordered by TIERS,
    and an ordering comparison with a string outside them is unknown."""
    if op in ARITHMETIC:
        return ARITHMETIC[op](left, right)  # type: ignore[arg-type]
    if op == "in":
        return left in right  # type: ignore[operator]
    if isinstance(left, str) and op not in ("==", "!="):
        if left not in TIERS or right not in TIERS:
            return None
        left, right = TIERS.index(left), TIERS.index(str(right))
    return ORDER_TESTS[op](left, right)  # type: ignore[arg-type]


PRECEDENCE = {"||": 1, "&&": 2, "+": 4, "-": 4, "*": 5}
RELATION = 3
UNARY = 6
ATOM = 7


def literal_text(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def render(tree: Tree) -> tuple[str, int]:
    """Source text with the fewest parentheses, and the precedence of its top operator."""
    if isinstance(tree, Lit):
        negative = not isinstance(tree.value, bool | str) and tree.value < 0
        return literal_text(tree.value), UNARY if negative else ATOM
    if isinstance(tree, Ref):
        return tree.path, ATOM
    if isinstance(tree, LitList):
        return "[" + ", ".join(literal_text(value) for value in tree.values) + "]", ATOM
    if isinstance(tree, Fn):
        return f"{tree.name}({tree.arg.path})", ATOM
    if isinstance(tree, Un):
        text, level = render(tree.operand)
        return tree.op + (text if level >= UNARY else f"({text})"), UNARY
    level = PRECEDENCE.get(tree.op, RELATION)
    (left, left_level), (right, right_level) = render(tree.left), render(tree.right)
    # Left-associative operators may leave a same-level left operand bare; relations
    # cannot be chained at all.
    if left_level < level or (left_level == level == RELATION):
        left = f"({left})"
    if right_level <= level:
        right = f"({right})"
    return f"{left} {tree.op} {right}", level


SPACES = (" ", "  ", "\t", "\n", " \n  ")


def render_loosely(tree: Tree, rng: random.Random) -> str:
    """Every operation parenthesised, leaves sometimes too, with random whitespace."""

    def space() -> str:
        return rng.choice(SPACES)

    def wrap(text: str) -> str:
        return f"({space()}{text}{space()})"

    if isinstance(tree, Lit | Ref | LitList | Fn):
        if isinstance(tree, LitList):
            text = "[" + f",{space()}".join(literal_text(value) for value in tree.values) + "]"
        else:
            text = render(tree)[0]
        return wrap(text) if rng.random() < 0.3 else text
    if isinstance(tree, Un):
        return wrap(tree.op + render_loosely(tree.operand, rng))
    left, right = render_loosely(tree.left, rng), render_loosely(tree.right, rng)
    return wrap(f"{left}{space()}{tree.op}{space()}{right}")


def referenced_paths(tree: Tree) -> list[str]:
    if isinstance(tree, Ref):
        return [tree.path]
    if isinstance(tree, Fn):
        return [tree.arg.path]
    if isinstance(tree, Un):
        return referenced_paths(tree.operand)
    if isinstance(tree, Bin):
        return referenced_paths(tree.left) + referenced_paths(tree.right)
    return []


def refs(*paths: str) -> st.SearchStrategy[Tree]:
    return st.sampled_from([Ref(path) for path in paths])


def list_of(values: st.SearchStrategy[int | float | str]) -> st.SearchStrategy[Tree]:
    return st.lists(values, min_size=1, max_size=3).map(lambda items: LitList(tuple(items)))


NUMBER_VALUES: st.SearchStrategy[int | float] = st.one_of(
    st.integers(-5, 5), st.integers(-9, 9).map(lambda k: k / 2)
)
NUMBERS: st.SearchStrategy[Tree] = st.recursive(
    st.one_of(
        NUMBER_VALUES.map(Lit),
        refs("n.x", "n.y"),
        st.just(Fn("size", Ref("l.x"))),
    ),
    lambda inner: st.one_of(
        st.builds(Bin, st.sampled_from(["+", "-", "*"]), inner, inner),
        st.builds(Un, st.just("-"), inner),
    ),
    max_leaves=4,
)
COMPARISON_OPS = st.sampled_from(list(ORDER_TESTS))
TIER_LITERALS = st.sampled_from(TIERS).map(Lit)
TIER_OPERANDS = st.one_of(refs("t.x", "t.y"), TIER_LITERALS)
MODE_OPERANDS = st.one_of(refs("u.x"), st.sampled_from(MODES).map(Lit))
BOOL_ATOMS: st.SearchStrategy[Tree] = st.one_of(
    st.sampled_from([Lit(True), Lit(False)]),
    refs("b.x", "b.y"),
    st.builds(Fn, st.just("has"), refs(*PROPERTY_FACTS)),
    st.builds(Bin, COMPARISON_OPS, NUMBERS, NUMBERS),
    st.builds(Bin, COMPARISON_OPS, refs("t.x", "t.y"), TIER_OPERANDS),
    st.builds(Bin, COMPARISON_OPS, TIER_LITERALS, refs("t.x", "t.y")),
    st.builds(Bin, st.sampled_from(["==", "!="]), MODE_OPERANDS, MODE_OPERANDS),
    st.builds(Bin, st.just("in"), MODE_OPERANDS, list_of(st.sampled_from(MODES))),
    st.builds(Bin, st.just("in"), TIER_OPERANDS, list_of(st.sampled_from(TIERS))),
    st.builds(Bin, st.just("in"), NUMBERS, list_of(NUMBER_VALUES)),
    st.builds(
        Bin,
        st.just("in"),
        st.one_of(st.sampled_from(ITEMS).map(Lit), refs("t.x", "u.x")),
        refs("l.x"),
    ),
)
CONDITIONS: st.SearchStrategy[Tree] = st.recursive(
    BOOL_ATOMS,
    lambda inner: st.one_of(
        st.builds(Bin, st.sampled_from(["&&", "||"]), inner, inner),
        st.builds(Un, st.just("!"), inner),
        st.builds(Bin, st.sampled_from(["==", "!="]), inner, inner),
    ),
    max_leaves=8,
)

ABSENT = object()
FACT_VALUES = st.fixed_dictionaries(
    {
        "b.x": st.sampled_from([True, False, None, ABSENT]),
        "b.y": st.sampled_from([True, False, None, ABSENT]),
        "n.x": st.one_of(st.integers(-6, 6), st.sampled_from([0.5, -2.5, 3.0, None, ABSENT])),
        "n.y": st.one_of(st.integers(-6, 6), st.sampled_from([1.5, None, ABSENT])),
        "t.x": st.sampled_from([*TIERS, "extreme", None, ABSENT]),
        "t.y": st.sampled_from([*TIERS, None, ABSENT]),
        "u.x": st.sampled_from([*MODES, Transport.CAR, "walk", None, ABSENT]),
        "l.x": st.one_of(
            st.sampled_from([None, ABSENT]),
            st.frozensets(st.sampled_from([*ITEMS, "other"])),
            st.lists(st.sampled_from(ITEMS), unique=True).map(tuple),
        ),
    }
).map(lambda values: {path: value for path, value in values.items() if value is not ABSENT})


@settings(max_examples=300)
@given(tree=CONDITIONS, facts=FACT_VALUES)
def test_compiled_conditions_agree_with_the_reference_interpreter(
    tree: Tree, facts: dict[str, object]
) -> None:
    source = render(tree)[0]
    compiled = compile_condition(source, PROPERTY_FACTS)
    assert compiled.evaluate(facts) is reference(tree, facts), source
    assert compiled.facts == tuple(dict.fromkeys(referenced_paths(tree)))


@settings(max_examples=300)
@given(tree=CONDITIONS, facts=FACT_VALUES, rng=st.randoms(use_true_random=False))
def test_extra_whitespace_and_parentheses_change_nothing(
    tree: Tree, facts: dict[str, object], rng: random.Random
) -> None:
    source = render_loosely(tree, rng)
    compiled = compile_condition(source, PROPERTY_FACTS)
    assert compiled.evaluate(facts) is reference(tree, facts), source


KNOWN_NUMBERS = st.fixed_dictionaries(
    {
        "n.x": st.one_of(st.integers(-6, 6), st.sampled_from([0.5, -2.5, 3.0])),
        "n.y": st.integers(-6, 6),
        "l.x": st.lists(st.sampled_from(ITEMS), unique=True).map(tuple),
    }
)


@settings(max_examples=300)
@given(
    tree=NUMBERS,
    op=COMPARISON_OPS,
    bound=NUMBER_VALUES,
    facts=KNOWN_NUMBERS,
)
def test_arithmetic_with_known_facts_agrees_with_the_reference_interpreter(
    tree: Tree, op: str, bound: float, facts: dict[str, object]
) -> None:
    # With every fact known nothing is masked by unknowns, so a precedence or
    # associativity slip shows up in the comparison.
    condition = Bin(op, tree, Lit(bound))
    compiled = compile_condition(render(condition)[0], PROPERTY_FACTS)
    assert compiled.evaluate(facts) is reference(condition, facts)


GARBAGE_TOKENS = [
    *CATALOGUE,
    "phq9",
    ".",
    "total",
    "&&",
    "||",
    "!",
    "==",
    "!=",
    "<",
    ">=",
    "in",
    "[",
    "]",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "=",
    "&",
    "|",
    "1",
    "2.5",
    "007",
    '"low"',
    "'car'",
    '"',
    "\\",
    "true",
    "false",
    "null",
    "has",
    "size",
    "foo",
    "and",
]


@given(
    st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(GARBAGE_TOKENS), max_size=12).map(" ".join),
        st.lists(st.sampled_from(GARBAGE_TOKENS), max_size=12).map("".join),
    )
)
def test_any_text_compiles_or_raises_expression_error(source: str) -> None:
    try:
        compiled = compile_condition(source, CATALOGUE)
    except ExpressionError as problem:
        position = problem.position
    else:
        assert compiled.evaluate({}) in (True, False, None)
        return
    assert position is None or 0 <= position <= len(source)


# --- Generated code -------------------------------------------------------------------


def test_generated_function_has_no_builtins_and_only_its_constants() -> None:
    source = (
        'cssrs.tier >= "low" && logistics.transport in ["car", "bus"]'
        " && size(supports.contacts) + phq9.total > 2"
    )
    compiled = compile_condition(source, CATALOGUE)
    function = compiled.evaluate
    assert isinstance(function, FunctionType)
    assert function.__globals__["__builtins__"] == {}
    constants = [value for name, value in function.__globals__.items() if name != "__builtins__"]
    assert all(
        isinstance(value, dict | frozenset) or value in (len, OverflowError) for value in constants
    )
    assert compiled.python.startswith("def condition(facts):")
    facts = {
        "cssrs.tier": "moderate",
        "logistics.transport": "bus",
        "supports.contacts": ("a",),
        "phq9.total": 2,
    }
    assert function(MappingProxyType(facts)) is True  # any Mapping will do


def cel_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.mark.parametrize(
    "value",
    [
        '"); import os; ("',
        "'); import os; ('",
        "\"\"\"'''",
        "back\\slash\\",
        "new\nline\n",
        "\\n is two characters",
        "{braces} %s $name",
    ],
)
def test_strings_that_look_like_code_are_only_data(value: str) -> None:
    literal = cel_string(value)
    cases: list[tuple[str, dict[str, object], bool | None]] = [
        (f"patient.language == {literal}", {"patient.language": value}, True),
        (f"patient.language == {literal}", {"patient.language": value + "x"}, False),
        (f"{literal} != patient.language", {"patient.language": value}, False),
        (f"patient.language == {literal}", {}, None),
        (f'patient.language in [{literal}, "x"]', {"patient.language": value}, True),
        (f'patient.language in ["x", {literal}]', {"patient.language": "y"}, False),
        (f"{literal} in supports.contacts", {"supports.contacts": ("x", value)}, True),
        (f"{literal} in supports.contacts", {"supports.contacts": (value[1:],)}, False),
    ]
    for source, facts, expected in cases:
        assert run(source, facts) is expected, source


def alternating(depth: int, leaf: Tree) -> Tree:
    """`n.x > 0 || (n.x > 1 && (n.x > 2 || ...))`, ``depth`` levels deep."""
    tree = leaf
    for level in reversed(range(depth)):
        tree = Bin("&&" if level % 2 else "||", Bin(">", Ref("n.x"), Lit(level % 4)), tree)
    return tree


def chain(op: str, operands: Sequence[Tree]) -> Tree:
    tree = operands[0]
    for operand in operands[1:]:
        tree = Bin(op, tree, operand)
    return tree


NOT_EQUAL = [Bin("!=", Ref("n.x"), Lit(k)) for k in range(120)]
SMALL_FACTS = [
    {"b.x": p, "b.y": q, "n.x": n}
    for p, q, n in itertools.product((True, False, None), (True, False, None), (-1, 0, 2, None))
]


@pytest.mark.parametrize(
    "tree",
    [
        alternating(28, Ref("b.x")),
        Bin("==", alternating(28, Ref("b.x")), Ref("b.y")),
        Bin("||", chain("&&", NOT_EQUAL), Ref("b.x")),
        Bin("==", chain("||", [Un("!", operand) for operand in NOT_EQUAL]), Ref("b.y")),
        chain("&&", [Bin("||", Ref("b.y"), operand) for operand in NOT_EQUAL]),
    ],
)
def test_deep_and_long_conditions_compile_and_agree(tree: Tree) -> None:
    compiled = compile_condition(render(tree)[0], PROPERTY_FACTS)
    for facts in SMALL_FACTS:
        assert compiled.evaluate(facts) is reference(tree, facts)


def test_arithmetic_beyond_float_range_is_unknown() -> None:
    huge = {"phq9.total": 10**400, "gad7.total": 1}
    assert run("phq9.total * 1.5 > 0", huge) is None
    assert run("phq9.total * 1.5 > 0 || gad7.total > 0", huge) is True
    assert run("phq9.total * 1.5 > 0 && gad7.total > 5", huge) is False
    assert run("phq9.total * 2 > 0", huge) is True  # ints do not overflow


def test_compiled_condition_can_still_be_built_positionally() -> None:
    placeholder = CompiledCondition("false", lambda facts: False, ())
    assert placeholder.python == ""
    assert placeholder.evaluate({}) is False
    compiled = compile_condition("phq9.total >= 15", CATALOGUE)
    assert compiled == CompiledCondition(compiled.source, compiled.evaluate, compiled.facts)
