"""A real ``carelevel serve`` process for tests that need one (signals, workers, log output)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

CARELEVEL = Path(sys.executable).parent / "carelevel"
API_KEY = re.compile(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> None:
    """Stop ``process`` with ``sig``, killing it if it has not exited within 10 s."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def environment_without_settings() -> dict[str, str]:
    """This process's environment without its CARELEVEL_ settings: a command run with it in a
    directory finds its settings there (a .env file) or takes the defaults."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CARELEVEL_")}


def server_environment(database: Path | str, **settings: str) -> dict[str, str]:
    """This process's environment without its CARELEVEL_ settings, plus the database (a path:
    an embedded SQLite file; a string: a database URL as it is) in development mode (so the
    first start of a fresh SQLite file prints a local admin's key) and ``settings``
    (``log_format="json"`` → ``CARELEVEL_LOG_FORMAT=json``, ``environment="production"``)."""
    url = f"sqlite+aiosqlite:///{database}" if isinstance(database, Path) else database
    env = environment_without_settings()
    env |= {
        "CARELEVEL_DATABASE_URL": url,
        "CARELEVEL_ENVIRONMENT": "development",
        "PYTHONUNBUFFERED": "1",
    }
    return env | {f"CARELEVEL_{name.upper()}": value for name, value in settings.items()}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text()

    def printed_key(self) -> str:
        """The local admin's key, printed at the first start of a fresh database."""
        keys: set[str] = set(API_KEY.findall(self.log()))
        assert len(keys) == 1, "the first start prints one local admin key"
        return keys.pop()


def kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and every process of its group at once (a server started with
    ``process_group=True``: the uvicorn supervisor and its workers), as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def running_server(
    directory: Path,
    env: Mapping[str, str],
    *arguments: str,
    process_group: bool = False,
    carelevel: Path = CARELEVEL,
) -> Iterator[Server]:
    """``carelevel serve`` on a free loopback port, once ``/healthz`` answers; stopped (SIGINT,
    then SIGKILL) on leaving, whatever happened. With ``process_group``, it leads a process
    group of its own (its workers with it): ``kill_process_group`` can crash all of them, and
    none of them is left behind on leaving. ``carelevel``: the command of another installation
    (by default, this environment's)."""
    port = free_port()
    stderr = directory / f"server-{port}.log"
    with stderr.open("wb") as output:
        process = subprocess.Popen(
            [str(carelevel), "serve", "--host", "127.0.0.1", "--port", str(port), *arguments],
            cwd=directory,  # no developer's .env is read
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=process_group,
        )
    server = Server(process, f"http://127.0.0.1:{port}", stderr)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, server.log()
            assert time.monotonic() < deadline, f"the server did not start:\n{server.log()}"
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield server
    finally:
        stop(process)
        if process_group:  # a worker the supervisor did not take down with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
