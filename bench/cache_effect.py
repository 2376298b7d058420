"""How much a validation and an evaluation cost when other work has just run, against a loop.

In the server a request's validation and evaluation run between other requests' parsing,
authentication and response writing, which evict what the processor's caches held. This
script times both right after touching 4 MB of memory, then in a plain loop (see
docs/performance.md, "Where the evaluate target stands").

    python bench/cache_effect.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from app.engine import default_rule_set, evaluate
from app.screenings.schemas import ScreeningRequest

ROOT = Path(__file__).resolve().parents[1]
OTHER_WORK_BYTES = 4 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    rounds = parser.parse_args().rounds
    compiled = default_rule_set()
    body = json.dumps(
        {"answers": json.loads((ROOT / "examples/adult-iop-suitable.json").read_text())}
    )
    request = ScreeningRequest.model_validate_json(body)
    other = bytearray(OTHER_WORK_BYTES)

    def other_work() -> None:
        for index in range(0, OTHER_WORK_BYTES, 64):  # one write per cache line
            other[index] = (other[index] + 1) & 255

    clock = time.perf_counter
    after_other = {"validate": 0.0, "evaluate": 0.0}
    for _ in range(rounds):
        other_work()
        start = clock()
        ScreeningRequest.model_validate_json(body)
        after_other["validate"] += clock() - start
        other_work()
        start = clock()
        evaluate(compiled, request.answers)
        after_other["evaluate"] += clock() - start
    in_loop = {}
    start = clock()
    for _ in range(rounds):
        ScreeningRequest.model_validate_json(body)
    in_loop["validate"] = clock() - start
    start = clock()
    for _ in range(rounds):
        evaluate(compiled, request.answers)
    in_loop["evaluate"] = clock() - start
    for step in ("validate", "evaluate"):
        print(
            f"{step:<9} after other work {after_other[step] / rounds * 1e6:6.1f} µs, "
            f"in a loop {in_loop[step] / rounds * 1e6:6.1f} µs"
        )


if __name__ == "__main__":
    main()
