"""FHIR validation of what carelevel serves, run by ``make fhir-validate``.

The validators are node packages pinned in this directory (``npm ci --ignore-scripts``), so
the tests here are not part of the default ``pytest`` run: a test module here is collected
only when this directory (or a file in it) is named on the command line.
"""

from __future__ import annotations

from pathlib import Path

from tests.collection import collected_only_when_named

pytest_ignore_collect = collected_only_when_named(Path(__file__).resolve().parent)
