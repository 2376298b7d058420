"""Engine micro-benchmark: µs per full evaluation of the default rule set.

One evaluation = instrument scoring + fact extraction + every rule stage + the explained
determination with its full trace. Answers are varied: the README examples and every test case
of the default rule set. Pydantic validation of the same answers is timed in the same run for
comparison, and so is JSON serialisation of the determination.

    python bench/engine.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.engine import (
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    default_rule_set_source,
    determination_to_json,
    evaluate,
)
from app.engine.testing import case_answers

ROOT = Path(__file__).resolve().parents[1]


def varied_answers() -> list[dict[str, Any]]:
    compiled = default_rule_set()
    answers = [json.loads(path.read_text()) for path in sorted((ROOT / "examples").glob("*.json"))]
    answers += [case_answers(compiled, case) for case in compiled.document.tests]
    return answers


def measure(
    label: str, inputs: Sequence[Any], work: Callable[[Any], object], rounds: int
) -> dict[str, float]:
    for item in inputs:  # warm up
        work(item)
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for item in inputs:
            start = clock()
            work(item)
            samples.append((clock() - start) / 1000)
    samples.sort()
    result = {
        "median_us": statistics.median(samples),
        "p99_us": samples[int(len(samples) * 0.99) - 1],
        "mean_us": statistics.fmean(samples),
    }
    print(
        f"{label:<42} median {result['median_us']:8.1f} µs   p99 {result['p99_us']:8.1f} µs"
        f"   ({len(samples)} runs)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    raw = varied_answers()
    compiled = default_rule_set()
    validated = [ScreeningAnswers.model_validate(item) for item in raw]
    determinations = [evaluate(compiled, answers) for answers in validated]
    print(
        f"carelevel engine benchmark — {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, {len(raw)} varied answer sets, "
        f"{len(compiled.rule_ids)} rules"
    )

    start = time.perf_counter()
    compile_rule_set(default_rule_set_source())
    elapsed_ms = 1000 * (time.perf_counter() - start)
    print(f"{'compile the default rule set (once)':<42} {elapsed_ms:8.1f} ms")
    measure("validate answers (Pydantic)", raw, ScreeningAnswers.model_validate, args.rounds)
    result = measure(
        "evaluate (scores, rules, trace)",
        validated,
        lambda answers: evaluate(compiled, answers),
        args.rounds,
    )
    measure("serialise determination to JSON", determinations, determination_to_json, args.rounds)
    target = 100.0
    verdict = "meets" if result["median_us"] <= target else "MISSES"
    print(f"evaluation median {result['median_us']:.1f} µs {verdict} the {target:.0f} µs target")


if __name__ == "__main__":
    main()
