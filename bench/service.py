"""HTTP benchmark: carelevel on PostgreSQL against bare FastAPI baselines, driven by wrk.

On this machine, in one run: creates a fresh database, migrates it (`carelevel migrate`),
creates an API client (`carelevel clients create`), starts `carelevel serve` (one worker with
the rate-limit storage the ratios are taken with, one worker and two workers with the shared
storage) and the baselines of bench/baselines.py (A: FastAPI validating the same request model;
A+E: A plus the engine; B: A plus one asyncpg INSERT; B+E: B plus the engine), all on loopback.
Each target is warmed up, then measured ``--runs`` times with wrk at fixed concurrency, the
targets interleaved round by round so that a noisy minute hits them all alike; the median run
of each is reported. At the end (also on Ctrl-C, SIGTERM or a failure) every process it
started is stopped and the database dropped.

With ``--compare REF`` (a commit of this repository: ``main~5``, a sha) the same run also
measures that commit's code: a detached ``git worktree`` of it in the run's temporary
directory, its own database (``<database>_base``, migrated by its own ``carelevel migrate``,
with an API client made by its own CLI) and its one-worker ``carelevel serve`` (this
environment's Python, the worktree first on the import path; checked before it starts),
pinned like the others. Its targets, ``carelevel-evaluate@base`` and ``carelevel-stored@base``,
take their turn in every round beside their counterparts, and evaluate / A and stored / B are
reported for both trees with their relative change. The worktree and its database go at the
end like the rest.

    python bench/service.py [--duration 10] [--connections 32] [--runs 3] [--only KEY ...]
                            [--rate-limit-storage memory|redis]
                            [--shared-storage redis] [--compare REF]
                            [--profile DIR] [--json FILE]

Prints requests/s, p50 and p99 latency and errors per target, the engine's µs per evaluation,
the two ratios against their targets (and against the other tree's, with ``--compare``) and
what the engine, the shared rate limit and a second worker change. Exit status 0 when both
ratios hold (and, with ``--compare``, neither fell by more than 10% against the other tree's),
1 when one does not (or one fell by more), 2 when the benchmark could not run. Not a test:
figures depend on the machine (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LUA = BENCH / "wrk" / "post.lua"
EXAMPLE = ROOT / "examples" / "adult-iop-suitable.json"
BIN = Path(sys.executable).parent

EVALUATE_TARGET = 0.70  # carelevel evaluate / baseline A
STORED_TARGET = 0.50  # carelevel stored / baseline B
BASE = "@base"  # suffix of the keys of the targets of --compare
TOLERANCE = 0.10  # with --compare, a ratio may fall by this much against the other tree's


# --- processes ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    cpus: str | None  # taskset CPU list, None: unpinned
    cwd: Path | None = None  # None: the run's work directory
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workdir: Path) -> None:
        self.port = free_port()
        command = [*self.command, "--port", str(self.port)]
        if self.cpus is not None:
            command = ["taskset", "-c", self.cpus, *command]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd or workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it
            )
        wait_until_up(self, f"{self.base}/healthz")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(server: Server, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited at start; see {server.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} did not answer {url} within {timeout:.0f} s; see {server.log}")


class BenchError(Exception):
    pass


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# --- the tree compared with (--compare) ---------------------------------------------------


@dataclass
class Base:
    """The commit of ``--compare``, checked out in a detached worktree and run with this
    environment's Python, the tree first on the import path, on a database of its own."""

    ref: str
    sha: str
    short: str
    tree: Path
    database: str
    dsn: str
    carelevel: list[str]  # its ``carelevel`` command
    key: str = ""

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with the tree first on the import path."""
        paths = [str(self.tree), *filter(None, [env.get("PYTHONPATH")])]
        return env | {"PYTHONPATH": os.pathsep.join(paths)}


def git(*arguments: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *arguments], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(arguments)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def remove_worktree(tree: Path) -> None:
    """``git worktree remove --force``, then whatever is left of it and its registration."""
    with contextlib.suppress(BenchError, OSError, subprocess.SubprocessError):
        git("worktree", "remove", "--force", str(tree))
    shutil.rmtree(tree, ignore_errors=True)
    with contextlib.suppress(BenchError, OSError, subprocess.SubprocessError):
        git("worktree", "prune")


def entry_point(tree: Path) -> tuple[str, str]:
    """The module and function of the tree's ``carelevel`` command (its pyproject.toml)."""
    try:
        project = tomllib.loads((tree / "pyproject.toml").read_text())
        module, function = project["project"]["scripts"]["carelevel"].split(":")
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as error:
        raise BenchError(f"no carelevel entry point in {tree}/pyproject.toml: {error}") from error
    return module, function


def carelevel_command(module: str, function: str) -> list[str]:
    """``carelevel`` run by this environment's Python from whatever tree is first on the
    import path (the working directory, PYTHONPATH), installed or not."""
    code = f"import sys; from {module} import {function}; sys.argv[0] = 'carelevel'; "
    return [str(BIN / "python"), "-c", code + f"sys.exit({function}())"]


def check_source(module: str, env: dict[str, str], cwd: Path, tree: Path) -> Path:
    """Where a process started with ``env`` in ``cwd`` imports ``module`` from (a one-off
    process), which must be in ``tree``."""
    probe = f"import {module} as m; print(m.__file__)"
    where = Path(run([str(BIN / "python"), "-c", probe], env, cwd).strip()).resolve()
    if not where.is_relative_to(tree.resolve()):
        raise BenchError(f"{module} would be imported from {where}, not from {tree}")
    return where


def prepare_base(args: argparse.Namespace, session: Session) -> Base:
    """The worktree of ``--compare``, checked to run its own code, with its database migrated
    by its own ``carelevel migrate`` and an API client made by its own CLI."""
    sha = git("rev-parse", "--verify", "--end-of-options", f"{args.compare}^{{commit}}")
    short = git("rev-parse", "--short", sha)
    tree = session.workdir / f"base-{short}"
    session.trees.append(tree)  # from here on the clean-up removes it
    git("worktree", "add", "--detach", str(tree), sha)
    module, function = entry_point(tree)
    database = f"{args.database}_base"
    base = Base(args.compare, sha, short, tree, database, session.dsn(database),
                carelevel_command(module, function))  # fmt: skip
    env = carelevel_env(base.env(clean_environment()), asyncpg_url(base.dsn), args, "memory")
    here = check_source(entry_point(ROOT)[0], clean_environment(), session.workdir, ROOT)
    there = check_source(module, env, tree, tree)
    print(f"this tree's carelevel: {here}\n{args.compare} = {short}, its carelevel: {there}")
    base.key = prepare_database(session, base.database, base.carelevel, env, tree)
    return base


# --- the database ---------------------------------------------------------------------------


async def recreate_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def database_facts(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        facts: dict[str, Any] = {"version": await connection.fetchval("SHOW server_version")}
        for setting in ("synchronous_commit", "fsync", "shared_buffers", "max_connections"):
            facts[setting] = await connection.fetchval(f"SHOW {setting}")
        return facts
    finally:
        await connection.close()


def base_counts(base: Base) -> dict[str, int] | str:
    """The rows the tree compared with stored, if its schema has the tables counted."""
    try:
        return asyncio.run(stored_counts(base.dsn))
    except asyncpg.PostgresError as error:
        return f"not counted ({error})"


async def _count_if_there(connection: Any, table: str) -> int:
    exists = await connection.fetchval(f"SELECT to_regclass('{table}') IS NOT NULL")
    return int(await connection.fetchval(f"SELECT count(*) FROM {table}")) if exists else 0


async def stored_counts(dsn: str) -> dict[str, int]:
    """Rows the stored runs left, from one snapshot: each stored screening has its audit event
    and its completed key."""
    await asyncio.sleep(1.0)  # requests wrk left in flight finish
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            return {
                "screenings": await connection.fetchval("SELECT count(*) FROM screenings"),
                "audit_events": await connection.fetchval(
                    "SELECT count(*) FROM audit_events WHERE action = 'screening.create'"
                ),
                "completed_keys": await connection.fetchval(
                    "SELECT count(*) FROM idempotency_keys WHERE state = 'completed'"
                ),
                "baseline_rows": await _count_if_there(connection, "bench_answers"),
                "baseline_engine_rows": await _count_if_there(connection, "bench_determinations"),
            }
    finally:
        await connection.close()


# --- wrk --------------------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    label: str
    server: Server
    path: str
    workers: int
    unique_keys: bool = False
    authorization: str | None = None
    expect: int = 200
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.base + self.path

    def median(self) -> dict[str, Any]:
        """The run with the median requests/s (its latencies with it)."""
        ordered = sorted(self.results, key=lambda result: float(result["rps"]))
        return ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else _middle(ordered)


def _middle(ordered: list[dict[str, Any]]) -> dict[str, Any]:
    """With an even number of runs: the mean of the two middle ones."""
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    return {
        name: (low[name] + high[name]) / 2 if isinstance(low[name], int | float) else low[name]
        for name in low
    }


def wrk(
    target: Target,
    body: Path,
    args: argparse.Namespace,
    seconds: float,
    run_id: str,
) -> dict[str, Any]:
    command = [
        "wrk",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        target.url,
        "--",
        str(body),
        "unique-key" if target.unique_keys else "static",
        run_id,
        target.authorization or "",
    ]
    if args.pin and target.workers == 1:
        command = ["taskset", "-c", args.client_cpus, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed for {target.label}:\n{done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    sockets = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "http_errors": raw["status"],
        "socket_errors": sockets,
        "errors": raw["status"] + sockets,
    }


def check_target(target: Target, body: bytes) -> None:
    """One request before any load: the expected status, and a determination from carelevel."""
    headers = {"Content-Type": "application/json"}
    if target.authorization:
        headers["Authorization"] = target.authorization
    if target.unique_keys:
        headers["Idempotency-Key"] = f"check-{uuid.uuid4()}"
    request = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    if status != target.expect:
        raise BenchError(f"{target.label}: expected {target.expect}, got {status}: {text[:300]!r}")
    if target.key.startswith("carelevel") and b'"determination"' not in text:
        raise BenchError(f"{target.label}: no determination in {text[:300]!r}")


# --- profiling ----------------------------------------------------------------------------------


def profile(target: Target, body: Path, args: argparse.Namespace, directory: Path) -> None:
    """py-spy on the server of ``target`` while wrk loads it: a flame graph and the collapsed
    stacks (bench/profile_summary.py turns them into a table of where the time goes)."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy (.venv/bin/pip install py-spy)")
    assert target.server.process is not None
    directory.mkdir(parents=True, exist_ok=True)
    seconds = args.profile_seconds
    recorders = []
    for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
        output = directory / f"{target.key}.{suffix}"
        recorders.append(
            subprocess.Popen(
                [py_spy, "record", "--pid", str(target.server.process.pid), "--subprocesses",
                 "--rate", "250", "--duration", str(seconds), "--format", fmt, "--output",
                 str(output), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )  # fmt: skip
    time.sleep(1.0)
    result = wrk(target, body, args, seconds - 2, f"profile-{uuid.uuid4().hex[:8]}")
    for recorder in recorders:
        _, error = recorder.communicate(timeout=60)
        if recorder.returncode != 0:
            raise BenchError(f"py-spy failed: {error.decode(errors='replace')}")
    print(
        f"\nprofile of {target.label} under load ({result['rps']:.0f} req/s while sampled): "
        f"{directory}/{target.key}.svg and .txt"
    )


# --- the machine ----------------------------------------------------------------------------


def machine(database: dict[str, Any]) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    versions = {}
    for package in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic",
                    "sqlalchemy", "asyncpg", "orjson"):  # fmt: skip
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgres": database,
        "packages": versions,
        "wrk": wrk_version.splitlines()[0] if wrk_version else "wrk",
        "load_average": os.getloadavg(),
    }


# --- the benchmark ------------------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    """The caller's environment without any CARELEVEL_* setting (they would change the
    configuration measured); servers also run in an empty directory, so no .env applies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARELEVEL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def carelevel_env(
    base: dict[str, str], url: str, args: argparse.Namespace, storage: str
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "CARELEVEL_DATABASE_URL": url,
            "CARELEVEL_ENVIRONMENT": "production",  # JSON access lines, as deployed
            # The limits are raised so that the benchmark measures requests, not 429s; the
            # counting itself (a round trip per request with the Redis storage) still runs.
            "CARELEVEL_RATE_LIMIT_REQUESTS": "10000000",
            "CARELEVEL_RATE_LIMIT_TENANT_REQUESTS": "10000000",
            "CARELEVEL_RATE_LIMIT_STORAGE": storage,
            "CARELEVEL_PUBLIC_URL": "http://127.0.0.1",
            "CARELEVEL_SHUTDOWN_TIMEOUT_SECONDS": "5",
        }
    )
    if storage == "redis":
        env["CARELEVEL_REDIS_URL"] = args.redis_url
    if args.pool_size is not None:
        env["CARELEVEL_DB_POOL_SIZE"] = str(args.pool_size)
    return env


def build_targets(
    args: argparse.Namespace, workdir: Path, url: str, dsn: str, key: str, other: Base | None
) -> tuple[list[Server], list[Target]]:
    base = clean_environment()
    carelevel = [str(BIN / "carelevel"), "serve"]
    uvicorn = [str(BIN / "python"), "-m", "uvicorn", "--factory", "--app-dir", str(BENCH),
               "--no-access-log", "--log-level", "warning", "--workers", "1"]  # fmt: skip
    pinned = args.server_cpus if args.pin else None
    a = Server("baseline A", [*uvicorn, "baselines:create_a"], base, workdir / "a.log", pinned)
    ae = Server("baseline A+E", [*uvicorn, "baselines:create_a_engine"], base,
                workdir / "ae.log", pinned)  # fmt: skip
    raw = Server("baseline R+E", [*uvicorn, "baselines:create_raw_engine"], base,
                 workdir / "raw.log", pinned)  # fmt: skip
    b_env = base | {"BENCH_DATABASE_DSN": dsn, "BENCH_POOL_SIZE": "10"}
    b = Server("baseline B", [*uvicorn, "baselines:create_b"], b_env, workdir / "b.log", pinned)
    be = Server("baseline B+E", [*uvicorn, "baselines:create_b_engine"], b_env,
                workdir / "be.log", pinned)  # fmt: skip
    ratio = args.rate_limit_storage
    shared = args.shared_storage
    one = Server(f"carelevel (1 worker, rate limit {ratio})", [*carelevel, "--workers", "1"],
                 carelevel_env(base, url, args, ratio), workdir / "c1.log", pinned)  # fmt: skip
    one_shared = Server(f"carelevel (1 worker, rate limit {shared})",
                        [*carelevel, "--workers", "1"], carelevel_env(base, url, args, shared),
                        workdir / "c1-shared.log", pinned)  # fmt: skip
    two = Server(f"carelevel (2 workers, rate limit {shared})", [*carelevel, "--workers", "2"],
                 carelevel_env(base, url, args, shared), workdir / "c2.log", None)  # fmt: skip
    bearer = f"Bearer {key}"
    evaluate, stored = "/v1/screenings/evaluate", "/v1/screenings"
    targets = [
        Target("a", "A: FastAPI, validate, small JSON", a, "/evaluate", 1),
        Target("a-engine", "A+E: A + engine, determination JSON", ae, "/evaluate", 1),
        Target("raw-engine", "R+E: bare ASGI, validate + engine", raw, "/evaluate", 1),
        Target("b", "B: A + one asyncpg INSERT", b, "/screenings", 1, expect=201),
        Target("b-engine", "B+E: B + engine, determination stored", be, "/screenings", 1,
               expect=201),
        Target("carelevel-evaluate", f"carelevel evaluate (rate limit {ratio})", one,
               evaluate, 1, authorization=bearer),
        Target("carelevel-stored", f"carelevel stored (rate limit {ratio})", one, stored, 1,
               unique_keys=True, authorization=bearer, expect=201),
        Target(f"carelevel-evaluate-{shared}", f"carelevel evaluate (rate limit {shared})",
               one_shared, evaluate, 1, authorization=bearer),
        Target(f"carelevel-stored-{shared}", f"carelevel stored (rate limit {shared})",
               one_shared, stored, 1, unique_keys=True, authorization=bearer, expect=201),
        Target("carelevel-evaluate-2w", f"carelevel evaluate (rate limit {shared})", two,
               evaluate, 2, authorization=bearer),
        Target("carelevel-stored-2w", f"carelevel stored (rate limit {shared})", two, stored, 2,
               unique_keys=True, authorization=bearer, expect=201),
    ]  # fmt: skip
    if shared == ratio:  # the same configuration twice: measure it once
        targets = [t for t in targets if t.server is not one_shared]
    every = [a, ae, raw, b, be, one, one_shared, two]
    if other is not None:
        compared = base_targets(args, workdir, other)
        every.append(compared[0].server)
        targets = beside_their_own(targets, compared)
    if args.only:  # a target of --compare comes with its counterpart
        targets = [t for t in targets if {t.key, t.key.removesuffix(BASE)} & set(args.only)]
    servers = [s for s in every if any(t.server is s for t in targets)]
    return servers, targets


def base_targets(args: argparse.Namespace, workdir: Path, base: Base) -> list[Target]:
    """The one-worker carelevel targets of the tree compared with, configured alike."""
    ratio = args.rate_limit_storage
    url = asyncpg_url(base.dsn)
    server = Server(f"carelevel @{base.short} (1 worker, rate limit {ratio})",
                    [*base.carelevel, "serve", "--workers", "1"],
                    carelevel_env(base.env(clean_environment()), url, args, ratio),
                    workdir / "c1-base.log", args.server_cpus if args.pin else None,
                    cwd=base.tree)  # fmt: skip
    bearer = f"Bearer {base.key}"
    return [
        Target(f"carelevel-evaluate{BASE}", f"carelevel evaluate @{base.short} (rate limit "
               f"{ratio})", server, "/v1/screenings/evaluate", 1, authorization=bearer),
        Target(f"carelevel-stored{BASE}", f"carelevel stored @{base.short} (rate limit {ratio})",
               server, "/v1/screenings", 1, unique_keys=True, authorization=bearer, expect=201),
    ]  # fmt: skip


def beside_their_own(targets: list[Target], compared: list[Target]) -> list[Target]:
    """Each target of the tree compared with right after its counterpart of this tree."""
    placed: list[Target] = []
    for target in targets:
        placed.append(target)
        placed += [c for c in compared if c.key == target.key + BASE]
    return placed


def engine_figures(args: argparse.Namespace) -> dict[str, float]:
    """µs per evaluation, from the engine benchmark (bench/engine.py), in this process."""
    from engine import measure, varied_answers  # bench/engine.py

    from app.engine import ScreeningAnswers, default_rule_set, evaluate

    compiled = default_rule_set()
    answers = [ScreeningAnswers.model_validate(item) for item in varied_answers()]
    previous = os.sched_getaffinity(0)
    if args.pin:
        os.sched_setaffinity(0, {int(args.server_cpus.split(",")[0].split("-")[0])})
    try:
        return measure("engine: evaluate", answers, lambda a: evaluate(compiled, a), rounds=20)
    finally:
        os.sched_setaffinity(0, previous)


def row(target: Target, width: int = 40) -> str:
    m = target.median()
    spread = [r["rps"] for r in target.results]
    return (
        f"{target.label:<{width}} {target.workers:>3} {m['rps']:>9.0f} {m['p50_ms']:>8.1f} "
        f"{m['p99_ms']:>8.1f} {int(sum(r['errors'] for r in target.results)):>7d}   "
        f"{min(spread):.0f}–{max(spread):.0f}"
    )


def report(
    targets: list[Target], engine: dict[str, float] | None, facts: dict[str, Any],
    args: argparse.Namespace, compared: dict[str, Any] | None = None,
) -> bool:  # fmt: skip
    """Prints the table and the ratios; True when both targets hold."""
    print_table(targets, engine, args)
    print()
    by_key = {t.key: t.median()["rps"] for t in targets}
    passed = print_targets(by_key, args)
    if compared is not None:
        print_comparison(compared)
    print_other_ratios(by_key, args)
    print_costs(by_key, args)
    print_machine(facts)
    return passed


def print_table(
    targets: list[Target], engine: dict[str, float] | None, args: argparse.Namespace
) -> None:
    print()
    print(
        f"{args.connections} connections, {args.threads} wrk threads, {args.duration:g} s per "
        f"run, {args.runs} runs per target (median shown), warm-up {args.warmup:g} s; "
        f"ratios with rate limit storage {args.rate_limit_storage}; "
        + (f"carelevel pool {args.pool_size} per process; " if args.pool_size else "")
        + (f"1-worker servers on CPU {args.server_cpus}, wrk on CPU {args.client_cpus}"
           if args.pin else "no CPU pinning")
    )  # fmt: skip
    width = max([40, *(len(target.label) for target in targets)])
    header = (
        f"{'target':<{width}} {'wk':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        "   req/s of each run"
    )
    print(header)
    print("-" * len(header))
    for target in targets:
        print(row(target, width))
    if engine is not None:
        what = "engine alone (bench/engine.py)"
        print(
            f"{what:<{width}} {'':>3} {1e6 / engine['median_us']:>9.0f} {'':>8} {'':>8}"
            f" {'':>7}   {engine['median_us']:.1f} µs/evaluation median, "
            f"p99 {engine['p99_us']:.1f} µs"
        )


def print_targets(by_key: dict[str, float], args: argparse.Namespace) -> bool:
    """The two ratios against their targets; True when both hold (or were not measured)."""
    passed = True
    for numerator, denominator, target_ratio, what in (
        ("carelevel-evaluate", "a", EVALUATE_TARGET, "evaluate (no write) / A"),
        ("carelevel-stored", "b", STORED_TARGET, "stored (audited, idempotent) / B"),
    ):
        if numerator in by_key and denominator in by_key:
            ratio = by_key[numerator] / by_key[denominator]
            ok = ratio >= target_ratio
            passed &= ok
            verdict = "PASS" if ok else "FAIL"
            print(f"ratio {what:<40} {ratio:5.2f}   target ≥ {target_ratio:.2f}   {verdict}"
                  f"   (rate limit {args.rate_limit_storage})")  # fmt: skip
    return passed


def comparison(targets: list[Target], base: Base) -> dict[str, Any]:
    """evaluate / A and stored / B of this tree and of the tree compared with, from the same
    run, and the relative change; ``within`` is False for a fall of more than TOLERANCE."""
    by_key = {t.key: t.median()["rps"] for t in targets}
    ratios = {}
    for numerator, denominator, what in (
        ("carelevel-evaluate", "a", "evaluate / A"),
        ("carelevel-stored", "b", "stored / B"),
    ):
        if {numerator, numerator + BASE, denominator} <= by_key.keys():
            new = by_key[numerator] / by_key[denominator]
            old = by_key[numerator + BASE] / by_key[denominator]
            change = (new - old) / old
            ratios[what] = {"this": new, "base": old, "change": change,
                            "within": change >= -TOLERANCE}  # fmt: skip
    return {"ref": base.ref, "sha": base.sha, "short": base.short, "tolerance": TOLERANCE,
            "ratios": ratios}  # fmt: skip


def print_comparison(compared: dict[str, Any]) -> None:
    short, tolerance = compared["short"], compared["tolerance"]
    print(f"compared with {compared['ref']} ({short}) side by side, a change below "
          f"-{tolerance:.0%} fails:")  # fmt: skip
    if not compared["ratios"]:
        print("  nothing to compare: needs A with carelevel-evaluate or B with carelevel-stored")
    for what, ratio in compared["ratios"].items():
        verdict = "ok" if ratio["within"] else f"WORSE: more than {tolerance:.0%} below {short}"
        print(f"ratio {what:<16} this tree {ratio['this']:5.2f}   {short} {ratio['base']:5.2f}"
              f"   change {ratio['change']:+7.1%}   {verdict}")  # fmt: skip


def print_other_ratios(by_key: dict[str, float], args: argparse.Namespace) -> None:
    shared = args.shared_storage
    for numerator, denominator, what in (
        ("carelevel-evaluate", "a-engine", "evaluate / A+E (engine ceiling)"),
        ("raw-engine", "a", "R+E / A (the work itself, no framework)"),
        ("carelevel-evaluate", "raw-engine", "evaluate / R+E"),
        ("a-engine", "a", "A+E / A (the engine's own share)"),
        ("carelevel-stored", "b-engine", "stored / B+E (engine ceiling)"),
        ("b-engine", "b", "B+E / B (the engine's own share)"),
        (f"carelevel-evaluate-{shared}", "a", f"evaluate, rate limit {shared} / A"),
        (f"carelevel-stored-{shared}", "b", f"stored, rate limit {shared} / B"),
    ):
        if numerator in by_key and denominator in by_key:
            print(f"ratio {what:<40} {by_key[numerator] / by_key[denominator]:5.2f}")


def print_costs(by_key: dict[str, float], args: argparse.Namespace) -> None:
    """What the shared rate limit costs, and what a second worker brings."""
    shared = args.shared_storage
    for operation in ("evaluate", "stored"):
        fast, slow = (
            by_key.get(f"carelevel-{operation}"),
            by_key.get(f"carelevel-{operation}-{shared}"),
        )
        if fast and slow:
            cost = 1e6 / slow - 1e6 / fast
            print(f"rate limit {shared} costs {operation:<9} {cost:6.0f} µs per request at "
                  f"saturation (against {args.rate_limit_storage})")  # fmt: skip
    one_worker = f"-{shared}" if args.rate_limit_storage != shared else ""
    for operation in ("evaluate", "stored"):
        one, two = f"carelevel-{operation}{one_worker}", f"carelevel-{operation}-2w"
        if one in by_key and two in by_key:
            print(f"scaling 2 workers / 1 worker, {operation:<14} {by_key[two] / by_key[one]:5.2f}"
                  f"   (rate limit {shared})")  # fmt: skip


def print_machine(facts: dict[str, Any]) -> None:
    print(
        f"\nmachine: {facts['cpus']} × {facts['cpu']}, {facts['memory']}, {facts['python']}, "
        f"PostgreSQL {facts['postgres']['version']} (synchronous_commit="
        f"{facts['postgres']['synchronous_commit']}), {facts['wrk']}; {facts['date']}; "
        f"load average at start {facts['load_average'][0]:.2f}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up (3)")
    parser.add_argument("--runs", type=int, default=3, help="runs per target (3; median)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server to create the benchmark database on",
    )
    parser.add_argument("--database", default="carelevel_bench", help="dropped and recreated")
    parser.add_argument(
        "--rate-limit-storage",
        choices=["memory", "redis"],
        default="memory",
        help="rate-limit storage of the carelevel server the two ratios are taken on (memory: "
        "counted in the process, no round trip; see docs/performance.md)",
    )
    parser.add_argument(
        "--shared-storage",
        choices=["redis"],
        default="redis",
        help="rate-limit storage shared by processes, for the rows that show what it costs and "
        "the 2-worker rows (several processes need Redis)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--pool-size", type=int,
                        help="carelevel's database pool per process (its default, 10, if not "
                        "given; B and B+E keep 10)")  # fmt: skip
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin 1-worker servers and wrk to separate CPUs")  # fmt: skip
    parser.add_argument("--server-cpus", default="0", help="CPUs of 1-worker servers (0)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of wrk against them (1)")
    parser.add_argument("--only", nargs="+",
                        help="target keys to run (a a-engine b b-engine carelevel-evaluate "
                        "carelevel-stored carelevel-evaluate-database … -2w; with --compare, "
                        "carelevel-evaluate and carelevel-stored bring their @base)")  # fmt: skip
    parser.add_argument("--compare", metavar="REF",
                        help="a commit of this repository (main~5, a sha): its one-worker "
                        "carelevel is measured too, as carelevel-evaluate@base and "
                        "carelevel-stored@base, and evaluate / A and stored / B are compared "
                        f"with its own (a fall of more than {TOLERANCE:.0%}% fails)")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="py-spy the servers into this directory")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--profile-targets", nargs="+", default=["carelevel-stored"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return parser.parse_args(argv)


@contextlib.contextmanager
def terminated_on_sigterm() -> Iterator[None]:
    """SIGTERM and SIGINT end the run through the clean-up (SIGINT even where the shell
    started the benchmark with it ignored, as it does for a background job)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    previous = {
        number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@dataclass
class Session:
    """What a run leaves behind until its clean-up: its work directory, the servers it
    started, the databases it created and the worktree of ``--compare``."""

    args: argparse.Namespace
    workdir: Path
    servers: list[Server] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    trees: list[Path] = field(default_factory=list)

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        return f"{self.args.postgres.rstrip('/')}/{database}"

    def clean_up(self) -> None:
        """Every process stopped, every database dropped (unless kept), the worktree removed,
        the directory removed (unless its logs are kept); a second Ctrl-C does not cut it short."""
        with signals_ignored():
            for server in self.servers:
                server.stop()
            if not self.args.keep_database:
                for database in self.databases:
                    with contextlib.suppress(Exception):
                        asyncio.run(drop_database(self.admin_dsn, database))
            for tree in self.trees:
                remove_worktree(tree)
            if self.args.keep_logs:
                print(f"logs kept in {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)


def asyncpg_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def prepare_database(
    session: Session, database: str, carelevel: list[str], env: dict[str, str], cwd: Path
) -> str:
    """A fresh database, migrated by ``carelevel migrate``, with an API client; its key."""
    session.databases.append(database)  # from here on the clean-up drops it
    asyncio.run(recreate_database(session.admin_dsn, database))
    run([*carelevel, "migrate"], env, cwd)
    out = run([*carelevel, "clients", "create", "--tenant", "bench", "--name", "wrk",
               "--scopes", "screenings:write"], env, cwd)  # fmt: skip
    key = next((line.strip() for line in out.splitlines() if line.strip().startswith("clk_")), "")
    if not key:
        raise BenchError(f"no API key in the output of carelevel clients create:\n{out}")
    return key


def start_and_check(session: Session, servers: list[Server], targets: list[Target],
                    body: bytes) -> None:  # fmt: skip
    session.servers = servers  # the clean-up stops those started
    for server in servers:
        server.start(session.workdir)
        print(f"started {server.name} on port {server.port}", flush=True)
    for target in targets:
        check_target(target, body)


def measure(targets: list[Target], body: Path, args: argparse.Namespace) -> None:
    """The warm-up, then ``--runs`` rounds, each target once per round."""
    for target in targets:
        wrk(target, body, args, args.warmup, f"warm-{target.key}")
    for number in range(args.runs):
        for target in targets:
            run_id = f"r{number}-{uuid.uuid4().hex[:6]}"
            result = wrk(target, body, args, args.duration, run_id)
            target.results.append(result)
            print(f"run {number + 1}/{args.runs} {target.key:<24} {result['rps']:8.0f} "
                  f"req/s  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
                  f"errors {result['errors']}", flush=True)  # fmt: skip


def profile_targets(targets: list[Target], body: Path, args: argparse.Namespace) -> None:
    if args.profile is None:
        return
    for target in targets:
        if target.key in args.profile_targets:
            profile(target, body, args, args.profile)


def write_json(path: Path, results: dict[str, Any], targets: list[Target],
               args: argparse.Namespace) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        **results,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "targets": {t.key: {"label": t.label, "workers": t.workers,
                            "median": t.median(), "runs": t.results}
                    for t in targets},
    }, indent=2))  # fmt: skip


def benchmark(args: argparse.Namespace, session: Session) -> int:
    """The whole run, up to the report; its exit status."""
    engine = engine_figures(args) if not args.only else None
    dsn = session.dsn(args.database)
    env = carelevel_env(clean_environment(), asyncpg_url(dsn), args, "memory")
    key = prepare_database(session, args.database, [str(BIN / "carelevel")], env, session.workdir)
    base = prepare_base(args, session) if args.compare else None
    facts = machine(asyncio.run(database_facts(dsn)))
    body = session.workdir / "body.json"
    body.write_bytes(json.dumps({"answers": json.loads(EXAMPLE.read_text())}).encode())
    servers, targets = build_targets(args, session.workdir, asyncpg_url(dsn), dsn, key, base)
    start_and_check(session, servers, targets, body.read_bytes())
    measure(targets, body, args)
    results: dict[str, Any] = {"rows": asyncio.run(stored_counts(dsn))}
    print(f"rows stored: {results['rows']}")
    if base is not None:
        results["rows_base"] = base_counts(base)
        print(f"rows stored by {base.short}: {results['rows_base']}")
        results["comparison"] = comparison(targets, base)
    facts["load_average_end"] = os.getloadavg()
    passed = report(targets, engine, facts, args, results.get("comparison"))
    profile_targets(targets, body, args)
    if args.json is not None:
        write_json(args.json, {"machine": facts, "engine": engine, **results}, targets, args)
    held = all(r["within"] for r in results.get("comparison", {}).get("ratios", {}).values())
    return 0 if passed and held else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed", file=sys.stderr)
        return 2
    if args.pin and shutil.which("taskset") is None:
        args.pin = False
    session = Session(args, Path(tempfile.mkdtemp(prefix="carelevel-bench-")))
    return guarded(lambda: benchmark(args, session), session.clean_up)


def guarded(bench: Callable[[], int], clean_up: Callable[[], None]) -> int:
    """``bench``'s exit status, 2 when it could not run (said on stderr, without a traceback),
    130 on Ctrl-C or SIGTERM; ``clean_up`` done whatever happened."""
    try:
        with terminated_on_sigterm():
            return bench()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, subprocess.SubprocessError) as error:
        print(f"bench: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        clean_up()


if __name__ == "__main__":
    raise SystemExit(main())
