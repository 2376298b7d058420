"""The built package carries everything it runs: the wheel, built from the image's build context
alone (what .dockerignore lets in), holds every file of app/ and of migrations/, and once
installed in a fresh virtual environment its ``carelevel`` migrates a fresh database and serves
it from a directory outside the checkout.

Nothing is downloaded: the build backend is one of the test dependencies (no build isolation),
the wheel is installed without its dependencies, and the new environment borrows this one's
installed dependencies through a path file (which adds their directory, not this environment's
editable install of carelevel).
"""

from __future__ import annotations

import shutil
import site
import sqlite3
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from app import main as application  # importing the application registers every table
from app.kernel.db import Base
from app.kernel.migrate import head_revision
from tests.server_support import environment_without_settings, running_server, server_environment

ROOT = Path(__file__).parents[2]
# What the image's build context holds: the entries .dockerignore lets in ("!app/").
BUILD_CONTEXT = [
    line[1:].strip("/")
    for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    if line.startswith("!")
]
COMMAND_TIMEOUT_SECONDS = 120


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _outside_the_checkout() -> dict[str, str]:
    """This environment, less its settings and any PYTHONPATH that could lead to the checkout."""
    env = environment_without_settings()
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")  # no build/ or egg-info left in the checkout
    for name in BUILD_CONTEXT:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", dist, source,
        cwd=dist,
    )  # fmt: skip
    (built,) = dist.glob("carelevel-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its ``bin`` directory."""
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel,
        cwd=environment,
    )  # fmt: skip
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=environment
    )
    borrowed = "".join(f"{directory}\n" for directory in site.getsitepackages())
    Path(purelib.strip(), "borrowed-dependencies.pth").write_text(borrowed)
    return environment / "bin"


def test_the_wheel_holds_every_file_of_app_and_the_migrations(wheel: Path) -> None:
    def files(directory: Path, packaged_as: str) -> set[str]:
        return {
            f"{packaged_as}/{path.relative_to(directory).as_posix()}"
            for path in directory.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    expected = files(ROOT / "app", "app") | files(ROOT / "migrations", "app/migrations")
    with zipfile.ZipFile(wheel) as archive:
        held = {name for name in archive.namelist() if not name.endswith("/")}
    assert sorted(expected - held) == [], "add the package (or its data) to pyproject.toml"


def test_installed_carelevel_migrates_a_fresh_database_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    database = tmp_path / "fresh.db"
    env = _outside_the_checkout() | {"CARELEVEL_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}

    where = "import app, app.migrations; print(app.__file__, app.migrations.__file__)"
    locations = _run(installed / "python", "-c", where, cwd=tmp_path, env=env)
    package, migrations = (Path(found) for found in locations.split())
    assert package.is_relative_to(installed.parent), "the installed package, not the checkout"
    assert migrations.is_relative_to(package.parent)

    printed = _run(installed / "carelevel", "migrate", cwd=tmp_path, env=env)
    assert printed == "The database schema is up to date.\n"
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert application.__name__ == "app.main"  # imported, so every table is registered
    assert set(Base.metadata.tables) <= tables
    assert revision == head_revision()


def test_installed_carelevel_serves_a_fresh_database_ready(installed: Path, tmp_path: Path) -> None:
    env = server_environment(tmp_path / "fresh.db")
    env.pop("PYTHONPATH", None)
    with running_server(tmp_path, env, carelevel=installed / "carelevel") as server:
        ready = httpx.get(f"{server.base_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["migrations"] == {
        "status": "ok",
        "detail": f"at head {head_revision()}",
    }


def test_installed_carelevel_answers_help(installed: Path, tmp_path: Path) -> None:
    printed = _run(installed / "carelevel", "--help", cwd=tmp_path, env=_outside_the_checkout())
    assert printed.startswith("usage: carelevel")
    assert {"migrate", "serve", "clients"} <= set(printed.split())
