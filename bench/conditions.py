"""Why carelevel compiles its own CEL subset: condition evaluation, ours versus CEL.

Runs every condition of the default rule set that both engines can evaluate on one complete
set of facts (CEL reports a missing key as an error, where carelevel treats it as unknown, so
only conditions whose facts are all present are compared) and prints µs per condition.

    python bench/conditions.py        (needs the bench extra: common-expression-language)
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cel

from app.engine import ScreeningAnswers, default_rule_set
from app.engine.facts import extract_facts
from app.engine.scoring import score_answers

ROOT = Path(__file__).resolve().parents[1]


def complete_facts() -> dict[str, Any]:
    compiled = default_rule_set()
    answers = ScreeningAnswers.model_validate(
        json.loads((ROOT / "examples" / "adult-iop-suitable.json").read_text())
    )
    facts = extract_facts(answers, score_answers(answers, compiled.policies))
    for path in compiled.catalogue:
        if path.startswith("domains."):
            facts[path] = "moderate"
    facts["placement.level"] = "intensive_outpatient"
    facts["placement.minimum_hours_per_week"] = 9
    return {k: (v.value if hasattr(v, "value") else v) for k, v in facts.items() if v is not None}


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return tree


def per_call_us(call: Callable[[], object], rounds: int = 2000) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            call()
        samples.append((time.perf_counter() - start) / rounds * 1e6)
    return min(samples)


def main() -> None:
    compiled = default_rule_set()
    flat = complete_facts()
    context = cel.Context(nested(flat))
    rules = [
        r
        for stage in (
            compiled.safety,
            compiled.information,
            compiled.domains,
            compiled.placement,
            compiled.feasibility,
        )
        for r in stage
    ]
    ours, theirs = [], []
    for rule in rules:
        source = rule.condition.source
        if not all(fact in flat for fact in rule.condition.facts):
            continue
        try:
            program = cel.compile(source)
            expected = rule.condition.evaluate(flat)
            if program.execute(context) != expected:
                continue
        except Exception:  # a condition CEL cannot run is left out of the comparison
            continue
        ours.append(per_call_us(partial(rule.condition.evaluate, flat)))
        theirs.append(per_call_us(partial(program.execute, context)))
    build = per_call_us(lambda: cel.Context(nested(flat)), rounds=200)
    print(f"{len(ours)} of {len(rules)} default-rule-set conditions run identically in both")
    print(
        f"carelevel compiled closures: median {statistics.median(ours):6.2f} µs per condition, "
        f"total {sum(ours):7.1f} µs"
    )
    print(
        f"CEL (common-expression-language, reused Context): median "
        f"{statistics.median(theirs):6.2f} µs per condition, total {sum(theirs):7.1f} µs, "
        f"plus {build:.1f} µs to build the Context per screening"
    )


if __name__ == "__main__":
    main()
