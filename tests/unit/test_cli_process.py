"""The ``carelevel`` command as a shell runs it: its version, its output into a pipe whose
reader has gone, and the database its commands and ``serve`` find from one directory."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest

from app import __version__
from app.cli import main
from tests.server_support import (
    API_KEY,
    CARELEVEL,
    environment_without_settings,
    running_server,
)

ROOT = Path(__file__).parents[2]
COMMAND_TIMEOUT_SECONDS = 60


def carelevel(
    *arguments: str, cwd: Path, stdout: int = subprocess.PIPE, unbuffered: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``carelevel`` in ``cwd`` with no CARELEVEL_ setting in its environment (and its
    output buffered, as from a shell, unless ``unbuffered``)."""
    env = environment_without_settings()
    env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run(
        [str(CARELEVEL), *arguments],
        cwd=cwd,
        env=env | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {}),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"carelevel {__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert __version__ == project["version"]


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("arguments", [["rules", "facts"], ["--help"]])
def test_output_into_a_pipe_whose_reader_has_gone_ends_quietly(
    tmp_path: Path, arguments: list[str], unbuffered: bool
) -> None:
    """As in ``carelevel rules facts | head -1`` once head has read its line: the pipe's read
    end is closed before the command writes, so every write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = carelevel(*arguments, cwd=tmp_path, stdout=write_end, unbuffered=unbuffered)
    finally:
        os.close(write_end)
    assert done.stderr == ""  # no traceback, no "Exception ignored"
    if arguments != ["--help"]:  # argparse ignores a failed write of its help, and exits 0
        assert done.returncode == 1


def test_a_pipe_into_head_prints_the_first_line_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", f"'{CARELEVEL}' rules facts | head -1"],
        cwd=tmp_path,
        env=environment_without_settings(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("<!-- fact-catalogue:begin")
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_clients_and_serve_from_one_directory_use_one_database(tmp_path: Path) -> None:
    """Both read their settings the same way: here the .env file of the directory names the
    database (a path relative to it), and each says which one it uses."""
    (tmp_path / ".env").write_text("CARELEVEL_DATABASE_URL=sqlite+aiosqlite:///./team.db\n")
    created = carelevel(
        "clients", "create", "--tenant", "default", "--name", "intake",
        "--scopes", "screenings:read",
        cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stderr == f"carelevel: using database sqlite+aiosqlite:///{tmp_path}/team.db\n"
    key = API_KEY.findall(created.stdout)
    assert len(key) == 1

    with running_server(tmp_path, environment_without_settings()) as server:
        listed = httpx.get(
            f"{server.base_url}/v1/screenings", headers={"Authorization": f"Bearer {key[0]}"}
        )
        assert listed.status_code == 200
    assert f"API docs at {server.base_url}/docs\n" in server.log()
    assert sorted(path.name for path in tmp_path.glob("*.db")) == ["team.db"]

    listing = carelevel("clients", "list", cwd=tmp_path)
    assert listing.returncode == 0
    assert "intake" in listing.stdout
    assert listing.stderr == created.stderr
