"""Where the time goes, from py-spy's collapsed stacks (``py-spy record --format raw``).

Each sample is attributed to the first component, searching from the innermost frame out,
whose module it is in (the engine, Pydantic, SQLAlchemy, asyncpg, the ASGI stack, …), so
that the table adds up to 100%. Idle samples (the event loop waiting) are reported apart.
The inclusive "steps" undercount: py-spy sees a resumed coroutine's frames only up to the
event loop, so part of each step's samples lack the outer frames the step is matched on.

    python bench/profile_summary.py reports/perf/carelevel-stored.txt [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

# (component, pattern on "function (file:line)"), first match from the innermost frame wins;
# time in C (orjson, pydantic-core, the socket calls) counts for the Python frame calling it.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("engine: evaluate", r"\(app/engine/(?!answers|determination)"),
    ("determination to JSON (orjson)", r"determination_to_json|evaluation_body|Stored\.json"),
    ("request validation (Pydantic)", r"pydantic|\(app/engine/answers|plain_json_body"),
    ("asyncpg (statements, socket)", r"asyncpg/"),
    ("SQLAlchemy (pool checkout)", r"sqlalchemy/"),
    ("access line and metrics", r"/logging/|prometheus_client|Edge\._log|\(app/operations/"),
    ("authentication, rate limit", r"\(app/security/"),
    ("screening service (rows, key)", r"\(app/screenings/|\(app/audit/|\(app/db\.py"),
    ("edge, body cap (carelevel)", r"\(app/edge\.py|\(app/limits\.py"),
    ("FastAPI, Starlette", r"fastapi/|starlette/"),
    ("uvicorn, httptools (HTTP)", r"uvicorn/|httptools"),
    ("event loop (uvloop, asyncio)", r"asyncio/|uvloop"),
)
# Inclusive time of the steps of a request (a sample counts for every step on its stack).
STEPS: tuple[tuple[str, str], ...] = (
    ("edge (request id, headers, access line)", r"__call__ \(app/runtime/edge.py"),
    ("  access line (logging)", r"_log \(app/runtime/edge.py"),
    ("authorize: authenticate + rate limit", r"authorize \(app/security/access.py"),
    ("  rate limiter hit", r"hit \(app/security/rate_limit.py"),
    ("  authenticate", r"authenticate \(app/security/authentication.py"),
    ("request body parse + validation", r"plain_json_body|request_body_to_args"),
    ("ScreeningService.evaluate_only", r"evaluate_only \(app/screenings/service.py"),
    ("ScreeningService.create", r"create \(app/screenings/service.py"),
    ("  engine evaluate", r"evaluate \(app/engine/evaluate.py"),
    ("  determination to JSON", r"determination_to_json|evaluation_body"),
    ("  fingerprint", r"_fingerprint \(app"),
    ("  store in one statement", r"_store_in_one_statement"),
    ("    pool checkout (SQLAlchemy)", r"_checkout \(sqlalchemy"),
    ("  replay (key exists)", r"_replay \(app/screenings/service.py"),
    ("response sent (uvicorn)", r"RequestResponseCycle\.send"),
)
IDLE = re.compile(r"select \(selectors|run_forever|_run_once \(|uvloop.*run \(")


def component_of(frames: list[str]) -> str:
    """The component of the first frame, from the innermost out, that matches one."""
    for frame in reversed(frames):
        component = next((name for name, pattern in COMPONENTS if re.search(pattern, frame)),
                         None)  # fmt: skip
        if component is not None:
            return component
    return "other (interpreter, C code)"


def summarise(path: Path, top: int) -> str:
    counts: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    idle = total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        frames = stack.split(";")
        total += samples
        innermost = frames[-1] if frames else ""
        if IDLE.search(innermost) or "process " in innermost and len(frames) <= 3:
            idle += samples
            continue
        own[re.sub(r":\d+\)", ")", innermost)] += samples
        steps.update({name: samples for name, pattern in STEPS if re.search(pattern, stack)})
        counts[component_of(frames)] += samples
    return render(path, top, total, idle, counts, steps, own)


def render(
    path: Path,
    top: int,
    total: int,
    idle: int,
    counts: collections.Counter[str],
    steps: collections.Counter[str],
    own: collections.Counter[str],
) -> str:
    busy = total - idle
    lines = [f"{path}: {total} samples, {busy} busy ({busy / max(total, 1):.0%}), {idle} idle",
             "", f"{'component':<40} {'% of busy':>9}"]  # fmt: skip
    for name, samples in counts.most_common():
        lines.append(f"{name:<40} {samples / max(busy, 1):>9.1%}")
    lines += ["", f"{'step (inclusive)':<40} {'% of busy':>9}"]
    for name, _ in STEPS:
        lines.append(f"{name:<40} {steps[name] / max(busy, 1):>9.1%}")
    lines += ["", f"top {top} functions by own time (% of busy)"]
    for name, samples in own.most_common(top):
        lines.append(f"{samples / max(busy, 1):>6.1%}  {name[:150]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.raw, args.top))


if __name__ == "__main__":
    main()
