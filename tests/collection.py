"""Test directories that run only when asked for by name (``make browser``, ``make reliability``):
they start real servers and browsers, so the default ``pytest`` run leaves them out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def collected_only_when_named(directory: Path) -> Callable[[Path, pytest.Config], bool | None]:
    """A ``pytest_ignore_collect`` hook for a conftest in ``directory``: its test modules are
    collected only when the directory, or a file in it, is named on the command line."""

    def named_on_command_line(config: pytest.Config) -> bool:
        for arg in config.args:
            path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
            if path == directory or directory in path.parents:
                return True
        return False

    def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
        if (
            collection_path.parent == directory
            and collection_path.name.startswith("test_")
            and not named_on_command_line(config)
        ):
            return True
        return None

    return pytest_ignore_collect
