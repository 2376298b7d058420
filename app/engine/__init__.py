"""The pure screening engine: answers + rule set → explained determination. No I/O here
beyond reading the packaged default rule set."""

from __future__ import annotations

from functools import cache
from importlib import resources

from app.engine.answers import ScreeningAnswers
from app.engine.compiler import (
    CompiledRuleSet,
    RuleSetError,
    RuleSetProblem,
    compile_rule_set,
    document_sha256,
    parse_document,
)
from app.engine.determination import ENGINE_VERSION, Determination, determination_to_json
from app.engine.evaluate import evaluate
from app.engine.testing import TestReport, run_tests

DEFAULT_RULE_SET_KEY = "iop-level-of-care"


def default_rule_set_source() -> str:
    """The YAML text of the shipped default rule set."""
    return (
        resources.files("app.engine")
        .joinpath("default_rules", f"{DEFAULT_RULE_SET_KEY}.yaml")
        .read_text(encoding="utf-8")
    )


@cache
def default_rule_set() -> CompiledRuleSet:
    """The shipped default rule set, compiled once per process."""
    return compile_rule_set(default_rule_set_source())


__all__ = [
    "DEFAULT_RULE_SET_KEY",
    "ENGINE_VERSION",
    "CompiledRuleSet",
    "Determination",
    "RuleSetError",
    "RuleSetProblem",
    "ScreeningAnswers",
    "TestReport",
    "compile_rule_set",
    "default_rule_set",
    "default_rule_set_source",
    "determination_to_json",
    "document_sha256",
    "evaluate",
    "parse_document",
    "run_tests",
]
