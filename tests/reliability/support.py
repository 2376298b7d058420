"""What the reliability tests share: a private PostgreSQL cluster they may stop and start, a
watchdog that cleans up after a killed test run, bounded load from threads, a held table lock.

Everything here talks to loopback addresses only, and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.server_support import CARELEVEL, Server

API_KEY = re.compile(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")
PROBLEM_JSON = "application/problem+json"
COMMAND_TIMEOUT_SECONDS = 60.0


def require_loopback(url: str) -> None:
    """Reliability tests only ever send to a loopback address (written as one: no name a
    resolver could send elsewhere)."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    assert loopback, f"reliability tests only ever target loopback addresses, not {url}"


def postgres_bin() -> Path:
    """The directory of the newest installed PostgreSQL's server programs (Debian's layout),
    or that of the ``initdb`` on PATH."""
    found = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    assert initdb, "no PostgreSQL server programs: install postgresql (initdb, pg_ctl)"
    return Path(initdb).parent


def _as_postgres(command: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run ``command`` as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of this test run alone, in ``root``, listening on 127.0.0.1:``port``
    (and a socket in ``root``): stopping it never touches the machine's shared server.

    ``fsync=off``: the tests crash the service and stop the database, never the machine, so
    what a committed transaction wrote is in the OS page cache and survives both."""

    root: Path
    port: int
    bindir: Path = field(default_factory=postgres_bin)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def _run(self, *command: str) -> str:
        done = subprocess.run(
            _as_postgres(command),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def pg_ctl(self, *arguments: str) -> list[str]:
        return [str(self.bindir / "pg_ctl"), "-D", str(self.data), *arguments]

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",  # reachable from loopback only, by this run alone
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off -c max_connections=100"
        )
        self._run(*self.pg_ctl("-l", str(self.log), "-o", options, "-w", "-t", "30", "start"))

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode``: ``fast`` ends every session (clients get an error),
        ``immediate`` kills the server outright (crash recovery at the next start)."""
        self._run(*self.pg_ctl("-m", mode, "-w", "-t", "30", "stop"))

    def running(self) -> bool:
        status = subprocess.run(
            _as_postgres(self.pg_ctl("status")),
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        return status.returncode == 0

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the cluster stopped (SIGSTOP) until leaving, then resumed: a
        database that keeps its connections open and answers nothing (a paused VM, a network
        that drops packets), as opposed to one that is down and refuses connections."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        ).stdout.split()
        processes = [postmaster, *map(int, children)]
        try:
            for pid in processes:
                os.kill(pid, signal.SIGSTOP)
            yield
        finally:
            for pid in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


def _engine(url: str, isolation_level: str = "AUTOCOMMIT") -> AsyncEngine:
    return create_async_engine(
        url,
        poolclass=NullPool,
        isolation_level=isolation_level,
        connect_args={"timeout": 10, "command_timeout": 30},
    )


def fetch(url: str, query: str, **parameters: Any) -> list[dict[str, Any]]:
    """The rows of ``query`` (none for a statement that returns none), run on a connection of
    its own, outside any transaction (for the tests' synchronous code)."""

    async def run() -> list[dict[str, Any]]:
        engine = _engine(url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(query), parameters)
                return [dict(row._mapping) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


@contextlib.contextmanager
def table_locked(url: str, table: str, mode: str = "EXCLUSIVE") -> Iterator[None]:
    """``LOCK TABLE table IN mode MODE`` held by a transaction of its own until leaving: what
    the service sends to that table waits (holding its pooled connection) meanwhile.
    ``EXCLUSIVE`` lets reads through and stops every write."""
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    async def hold() -> None:
        engine = _engine(url, "READ COMMITTED")
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f"LOCK TABLE {table} IN {mode} MODE"))
                locked.set()
                deadline = time.monotonic() + 60
                while not release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
        finally:
            await engine.dispose()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as error:  # reported to the test below
            failures.append(error)
            locked.set()

    holder = threading.Thread(target=run, name=f"lock {table}", daemon=True)
    holder.start()
    assert locked.wait(15), f"could not lock {table}"
    assert not failures, failures
    try:
        yield
    finally:
        release.set()
        holder.join(15)
        assert not holder.is_alive(), f"the lock on {table} was not released"
    assert not failures, failures


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        time.sleep(0.05)


def wait_for_workers(server: Server, workers: int, seconds: float = 30) -> None:
    """Until every worker of ``server`` has completed its start-up (``/healthz`` answers as
    soon as the first one has)."""
    wait_until(
        lambda: server.log().count("Application startup complete") >= workers,
        seconds,
        f"{workers} workers started:\n{server.log()[-3000:]}",
    )


def carelevel(env: Mapping[str, str], *arguments: str, cwd: Path) -> str:
    """Run the ``carelevel`` command line; its output (it must succeed)."""
    done = subprocess.run(
        [str(CARELEVEL), *arguments],
        env=dict(env),
        cwd=cwd,  # no developer's .env is read
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"carelevel {shlex.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def create_client(env: Mapping[str, str], cwd: Path, name: str, *scopes: str) -> str:
    """A new API client of the operator tenant made by ``carelevel clients create``: its key."""
    output = carelevel(
        env,
        "clients",
        "create",
        "--tenant",
        "default",
        "--name",
        name,
        "--scopes",
        *scopes,
        cwd=cwd,
    )
    keys = API_KEY.findall(output)
    assert len(keys) == 1, output
    key: str = keys[0]
    return key


class Watchdog:
    """A process outside this test run that, once the run's process is gone however it ended
    (even SIGKILL), kills the server process groups it was told of, stops the private cluster
    and removes its directory. Stopped (and nothing done) when the run cleans up by itself."""

    def __init__(self, cluster: PrivateCluster) -> None:
        self.groups = cluster.root.parent / f"{cluster.root.name}.groups"
        self.groups.touch()
        stop_cluster = shlex.join(_as_postgres(cluster.pg_ctl("-m", "immediate", "stop")))
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"for group in $(cat {shlex.quote(str(self.groups))}); do "
            f'kill -KILL -- "-$group" 2>/dev/null; done; '
            f"{stop_cluster} >/dev/null 2>&1; "
            f"rm -rf {shlex.quote(str(cluster.root))} {shlex.quote(str(self.groups))}"
        )
        self.process = subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the group a `timeout` around the run signals
        )

    def watch(self, server: Server) -> None:
        """Kill ``server``'s process group (``process_group=True``) if the run dies."""
        with self.groups.open("a") as groups:
            groups.write(f"{server.process.pid}\n")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.groups.unlink(missing_ok=True)


# --- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request a load thread sends."""

    method: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None  # its Idempotency-Key, if any


@dataclass(frozen=True)
class Outcome:
    call: Call
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no response at all (refused, reset, timed out)
    headers: httpx.Headers | None = None
    content: bytes = b""
    error: str | None = None

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    def describe(self) -> str:
        answer = f"{self.status} {self.content[:300]!r}" if self.status else self.error
        return f"{self.call.method} {self.call.path} after {self.elapsed:.2f} s: {answer}"


class Load:
    """``threads`` threads, each sending ``next_call(thread, n)`` for n = 0, 1, … one after
    the other, until ``stop()``, ``max_requests`` each, or ``seconds`` have passed, whichever
    comes first; with ``stop_when_unanswered``, a thread also stops at its first request that
    gets no response (the server is gone). Every outcome is kept, in ``outcomes``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        next_call: Callable[[int, int], Call],
        *,
        threads: int,
        max_requests: int,
        seconds: float,
        timeout: float = 10.0,
        pause: float = 0.0,
        stop_when_unanswered: bool = False,
    ) -> None:
        require_loopback(base_url)
        self.base_url = base_url
        self.api_key = api_key
        self.next_call = next_call
        self.max_requests = max_requests
        self.deadline = time.monotonic() + seconds
        self.timeout = timeout
        self.pause = pause
        self.stop_when_unanswered = stop_when_unanswered
        self.outcomes: list[Outcome] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load {n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every thread (each within its request timeout) and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        assert not alive, f"load threads did not stop: {alive}"
        assert not self.failures, self.failures

    def answered(self, status: int | None = None) -> list[Outcome]:
        return [
            o for o in list(self.outcomes) if o.status is not None and status in (None, o.status)
        ]

    def _run(self, thread: int) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            with httpx.Client(
                base_url=self.base_url, headers=headers, timeout=self.timeout, trust_env=False
            ) as http:
                for n in range(self.max_requests):
                    if self._stop.is_set() or time.monotonic() > self.deadline:
                        return
                    outcome = send(http, self.next_call(thread, n))
                    self.outcomes.append(outcome)
                    if outcome.status is None and self.stop_when_unanswered:
                        return
                    if self.pause:
                        self._stop.wait(self.pause)
        except BaseException as error:  # a bug of the test itself: reported by stop()
            self.failures.append(error)


def client_of(server: Server, api_key: str, timeout: float = 30) -> httpx.Client:
    """An HTTP client of ``server`` sending ``api_key`` (and never through a proxy)."""
    require_loopback(server.base_url)
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
        trust_env=False,
    )


def send(http: httpx.Client, call: Call) -> Outcome:
    headers = dict(call.headers)
    if call.key is not None:
        headers["Idempotency-Key"] = call.key
    started = time.monotonic()
    try:
        response = http.request(call.method, call.path, json=call.json, headers=headers)
    except httpx.TransportError as error:
        return Outcome(call, started, time.monotonic() - started, None, error=repr(error))
    return Outcome(
        call,
        started,
        time.monotonic() - started,
        response.status_code,
        response.headers,
        response.content,
    )


def assert_unavailable(outcome: Outcome) -> None:
    """A 503 problem+json with ``Retry-After``: the answer while the database is away."""
    assert outcome.status == 503, outcome.describe()
    assert outcome.headers is not None
    assert outcome.headers["content-type"].startswith(PROBLEM_JSON), outcome.describe()
    assert int(outcome.headers["retry-after"]) >= 1, outcome.describe()


def interrupt_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (what ``timeout`` sends) a KeyboardInterrupt, so that pytest still runs
    the fixtures' clean-up; returns what restores the previous handler."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
