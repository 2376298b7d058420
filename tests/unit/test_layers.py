"""Every module and package of ``app`` has its place in the layers that `make lint` checks
(import-linter's ``layers`` contract in pyproject.toml), so a new one cannot escape them."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import app

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def layered_modules() -> list[str]:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    layers = next(contract for contract in contracts if contract["id"] == "layers")["layers"]
    return [name for layer in layers for name in re.split(r"\s*[|:]\s*", layer)]


def test_every_top_level_module_of_app_is_in_a_layer() -> None:
    top_level = {f"app.{module.name}" for module in pkgutil.iter_modules(app.__path__)}
    layered = layered_modules()
    assert len(layered) == len(set(layered)), "a module is in two layers"
    assert sorted(top_level - set(layered)) == [], "add it to the layers contract"
    assert sorted(set(layered) - top_level) == [], "no longer exists: remove it from the layers"
