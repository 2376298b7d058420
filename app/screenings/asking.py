"""``ask_next`` of a screening: what to ask next, from its determination's missing items, the
rule set that decided it and the answers given (see ``app.engine.asking``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from app.engine.asking import answered_paths, questions_to_ask, to_json
from app.engine.compiler import CompiledRuleSet
from app.engine.determination import MissingItem
from app.questionnaire import form_items


@cache
def _questionnaire_paths() -> frozenset[str]:
    return frozenset(form_items())


def missing_items(stored: Sequence[Mapping[str, Any]]) -> tuple[MissingItem, ...]:
    """A stored determination's ``missing``, read back."""
    return tuple(
        MissingItem(entry["item"], entry["label"], tuple(entry["needed_by"])) for entry in stored
    )


def ask_next(
    missing: Sequence[MissingItem], compiled: CompiledRuleSet, answers: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """What to ask next, in the API's form; empty (and nothing computed) when nothing is
    missing."""
    if not missing:
        return []
    asks = questions_to_ask(missing, compiled, answered_paths(answers), _questionnaire_paths())
    return to_json(asks)
