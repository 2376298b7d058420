"""The operator's guide (docs/deployment.md) and the deployment files stay true to the code.

Every setting of the Settings model is in the guide's reference with its default, every metric
the service registers is in its table with its labels, every ``carelevel`` command and option it
shows exists, and docker-compose.yml and the Dockerfile keep the properties the guide promises.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from prometheus_client.metrics import MetricWrapperBase

from app import cli
from app import main as application  # importing the application registers every table
from app.kernel.db import Base
from app.kernel.settings import _PLACEHOLDER_PASSWORDS, Settings, get_settings
from app.operations.metrics import MULTIPROCESS_ENV, Metrics

ROOT = Path(__file__).parents[2]
GUIDE_PATH = ROOT / "docs" / "deployment.md"


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE_PATH.read_text("utf-8")


def _section(guide: str, heading: str) -> str:
    """The text of a ``##`` section, up to the next one."""
    start = guide.index(f"\n## {heading}\n")
    end = guide.find("\n## ", start + 1)
    return guide[start : end if end != -1 else len(guide)]


def _row(text: str, first_cell: str) -> str:
    """The Markdown table row whose first cell is ``first_cell``."""
    rows = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"{first_cell}: expected one table row, found {len(rows)}"
    return rows[0]


# --- settings ------------------------------------------------------------------------------------


def test_every_setting_is_in_the_reference_with_its_default(guide: str) -> None:
    reference = _section(guide, "Configuration reference")
    for name, field in Settings.model_fields.items():
        row = _row(reference, f"`CARELEVEL_{name.upper()}`")
        default = field.default
        if isinstance(default, int | float | str) and not isinstance(default, bool):
            assert f"`{default}`" in row.split("|")[2], f"CARELEVEL_{name.upper()}: {default!r}"


def test_the_guide_names_no_setting_that_does_not_exist(guide: str) -> None:
    settings = {f"CARELEVEL_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bCARELEVEL_[A-Z0-9_]*[A-Z0-9]", guide))
    assert named <= settings, named - settings


def test_the_refusal_the_guide_shows_is_what_serve_prints(
    guide: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    for variable in [v for v in os.environ if v.startswith("CARELEVEL_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("CARELEVEL_ENVIRONMENT", "production")
    monkeypatch.setenv(
        "CARELEVEL_DATABASE_URL", "postgresql+asyncpg://carelevel:change-me@postgres:5432/carelevel"
    )

    def must_not_serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the configuration was accepted")

    monkeypatch.setattr("uvicorn.run", must_not_serve)
    get_settings.cache_clear()
    try:
        code = cli.main(["serve"])
    finally:
        get_settings.cache_clear()
    assert code == 2
    printed = capsys.readouterr().err.splitlines()
    assert printed[0] == "carelevel: the configuration is invalid:"
    shown = guide.splitlines()
    for line in printed:
        assert line in shown, line


def test_the_guide_lists_every_placeholder_password(guide: str) -> None:
    start = guide.index("is a placeholder: empty,")
    bullet = guide[start : guide.index("(any case)", start)]
    for placeholder in _PLACEHOLDER_PASSWORDS - {""}:
        assert f"`{placeholder}`" in bullet, placeholder


# --- metrics -------------------------------------------------------------------------------------


def _instruments(monkeypatch: pytest.MonkeyPatch) -> list[MetricWrapperBase]:
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)
    metrics = Metrics()
    return [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def _exposed_name(instrument: MetricWrapperBase) -> str:
    """The name a scrape shows: counters gain ``_total``."""
    return str(instrument._name) + ("_total" if instrument._type == "counter" else "")


def test_every_metric_is_in_the_table_with_its_type_and_labels(
    guide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instruments = _instruments(monkeypatch)
    assert len(instruments) >= 5
    table = _section(guide, "Metrics")
    for instrument in instruments:
        row = _row(table, f"`{_exposed_name(instrument)}`")
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2] == instrument._type, row
        labels = tuple(instrument._labelnames)
        if labels:
            assert cells[3] == ", ".join(f"`{label}`" for label in labels), row
        else:
            assert cells[3] == "none", row


def test_the_guide_names_no_metric_that_does_not_exist(
    guide: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exposed = set()
    for instrument in _instruments(monkeypatch):
        name = _exposed_name(instrument)
        exposed.add(name)
        if instrument._type == "histogram":
            exposed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    # Names in the guide that are not metrics: the Compose network, an nginx log format.
    not_metrics = {"carelevel_default", "carelevel_no_query"}
    named = set(re.findall(r"\bcarelevel_[a-z_]+[a-z]", guide)) - not_metrics
    assert named <= exposed, named - exposed


# --- the carelevel command -----------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _code(markdown: str) -> list[str]:
    """Fenced code blocks and inline code spans, with shell line continuations joined."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return [piece.replace("\\\n", " ") for piece in fenced + spans]


# `carelevel …` or `.venv/bin/carelevel …`, not the end of a URL, an image or a path.
COMMAND = re.compile(
    r"(?:(?<=\.venv/bin/)|(?<![\w/:@.-]))carelevel[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?"
)


def test_every_carelevel_command_in_the_guide_exists(guide: str) -> None:
    commands = _subcommands(cli._parser())
    seen = set()
    for piece in _code(guide):
        for match in COMMAND.finditer(piece):
            word, action = match.groups()
            assert word in commands, f"carelevel {word}: no such command"
            parser = commands[word]
            actions = _subcommands(parser)
            if actions and action is not None:
                assert action in actions, f"carelevel {word} {action}: no such command"
                parser = actions[action]
            seen.add(" ".join(w for w in (word, action if actions else None) if w))
            rest = re.split(r"\s#|[|;&]", piece[match.end() :].split("\n", 1)[0])[0]
            for option in re.findall(r"(?<!\S)--[a-z][a-z-]*", rest):
                assert option in parser._option_string_actions, f"carelevel {word}: {option}"
    assert {"serve", "migrate", "clients create"} <= seen, seen


# --- docker-compose.yml --------------------------------------------------------------------------


def _seconds(duration: str | int | float) -> float:
    """A Compose duration (``45s``, ``1m30s``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return loaded


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else str(command)


def test_compose_runs_postgres_16_with_pg_partman_on_a_named_volume(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    dockerfile = (ROOT / str(postgres["build"]) / "Dockerfile").read_text("utf-8")
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert "FROM postgres:16" in instructions, dockerfile
    assert "postgresql-16-partman" in dockerfile
    volumes = [str(v) for v in postgres["volumes"]]
    data = [v.split(":")[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert data, volumes
    assert data[0] in (compose.get("volumes") or {}), "the data volume is a named volume"
    assert "healthcheck" in postgres


def test_compose_migrates_once_before_the_api(compose: dict[str, Any]) -> None:
    services: dict[str, dict[str, Any]] = compose["services"]
    migrations = [
        name
        for name, service in services.items()
        if _command(service) in ("carelevel migrate", "alembic upgrade head")
    ]
    assert len(migrations) == 1, migrations
    migrate = services[migrations[0]]
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    dependents = [s for s in services.values() if migrations[0] in (s.get("depends_on") or {})]
    assert dependents, "no service waits for the migration"
    for service in dependents:
        condition = service["depends_on"][migrations[0]]["condition"]
        assert condition == "service_completed_successfully"


def test_compose_api_takes_settings_from_an_env_file_and_shuts_down_gracefully(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    assert api.get("env_file"), "settings come from an env file"
    assert "healthz" in _command({"command": api["healthcheck"]["test"]})
    shutdown = Settings.model_fields["shutdown_timeout_seconds"].default
    assert isinstance(shutdown, int)
    assert _seconds(api["stop_grace_period"]) > shutdown
    assert compose["services"]["migrate"].get("env_file")


# --- Dockerfile ----------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text("utf-8")
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_the_image_is_multi_stage_non_root_with_a_health_check() -> None:
    instructions = _instructions()
    froms = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(froms) > 1, "multi-stage"
    runtime = instructions[froms[-1] :]
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    checks = [arguments for keyword, arguments in runtime if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    assert "/healthz" in checks[0], checks
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    command = [arguments for keyword, arguments in runtime if keyword == "CMD"][-1]
    assert '"carelevel", "serve"' in command, command
    # The vendored Swagger UI and ReDoc assets are under app/: in the context, built into the
    # package the builder installs, and copied with its virtual environment.
    assert ("COPY", "app/ app/") in instructions
    assert any(keyword == "COPY" and "/opt/venv" in arguments for keyword, arguments in runtime)
    assert (ROOT / "app" / "static" / "docs" / "VENDORED.json").is_file()
    ignored = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    assert "!app/" in ignored
    assert not [line for line in ignored if line.lstrip("/").startswith("app/static")]


def _runtime_imports() -> set[str]:
    """Top-level modules that app/ imports at run time (``if TYPE_CHECKING:`` blocks aside)."""
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name.split(".")[0] for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 0 and node.module:
                found.add(node.module.split(".")[0])

    for path in (ROOT / "app").rglob("*.py"):
        Imports().visit(ast.parse(path.read_text("utf-8")))
    return found - set(sys.stdlib_module_names) - {"app", "__future__"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_with(requirements: list[str]) -> set[str]:
    """The distributions that installing ``requirements`` brings, their dependencies too."""
    installed: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = _normalized(requirement.name)
        if name in installed:
            continue
        installed.add(name)
        try:
            needs = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not for this platform
        extras = {""} | set(requirement.extras)
        for text in needs:
            need = Requirement(text)
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in extras):
                pending.append(need)
    return installed


def test_the_image_installs_every_package_the_service_imports() -> None:
    """The image installs [project].dependencies only (not the test or dev extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    installed = _installed_with(project["dependencies"])
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: providers.get(module, ["?"])
        for module in sorted(_runtime_imports())
        if not {_normalized(d) for d in providers.get(module, [])} & installed
    }
    assert not missing, f"imported by app/ but not in [project].dependencies: {missing}"


# --- backups -------------------------------------------------------------------------------------


def test_every_table_is_in_the_backup_guide(guide: str) -> None:
    assert application.__name__ == "app.main"  # imported, so every table is registered
    backups = _section(guide, "Backups and point-in-time recovery")
    for table in [*Base.metadata.tables, "alembic_version"]:
        assert f"`{table}`" in backups, table


def test_the_guide_links_to_its_own_headings(guide: str) -> None:
    headings = re.findall(r"^#{2,4} (.+)$", guide, flags=re.MULTILINE)
    slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    for anchor in re.findall(r"\]\(#([^)]+)\)", guide):
        assert anchor in slugs, anchor
