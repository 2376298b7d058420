"""Helpers for the rule-set API tests (tests/api/test_rule_sets*.py).

New versions are built from version 1's own content, read back through the API, so every
document the tests send is one the service itself produced (the shipped rule set: about 100 KB
as JSON, 110 KB as YAML).
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from tests.support.apps import bearer, new_key
from tests.support.examples import create, example

KEY = "iop-level-of-care"
RULE_SETS = "/v1/rule-sets"
SHARED_SETS = f"{RULE_SETS}/shared"
VERSIONS = f"{SHARED_SETS}/{KEY}/versions"
STEP_DOWN = "place.iop-step-down"
STEP_DOWN_CASES = (
    "Step-down after residential",
    "Adolescent step-down after partial hospitalization",
)
NEVER_FIRES: dict[str, Any] = {
    "id": "place.never-fires",
    "description": "A placement no answers can reach.",
    "when": 'respondent.age_group == "adult" && respondent.age_group == "adolescent"',
    "level": "residential",
}

# libyaml when present: the pure-Python emitter and parser take ~0.5 s on a 100 KB document.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


async def named(app: FastAPI, name: str) -> dict[str, str]:
    """Authorization headers of a new operator-tenant admin called ``name``."""
    return bearer(await new_key(app, name=name))


def label_of(name: str) -> str:
    """A pattern for how the lifecycle records a client called ``name``: with its key prefix."""
    return rf"^{re.escape(name)} \(clk_[0-9a-f]{{8}}\)$"


def to_yaml(document: dict[str, Any]) -> bytes:
    text: str = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    return text.encode()


def from_yaml(text: str | bytes) -> Any:
    return yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml when present)


def rule(document: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        r for stage in document["stages"] for r in stage["rules"] if r["id"] == rule_id
    )
    return found


def stage(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in document["stages"] if s["stage"] == name)
    return found


def case(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in document["tests"] if c["name"] == name)
    return found


def stepping_down_to_php(document: dict[str, Any]) -> dict[str, Any]:
    """A publishable change of behaviour: a step-down after a 24-hour or day program goes to
    partial hospitalization instead of IOP (the rule and the two cases that pin it)."""
    changed = copy.deepcopy(document)
    rule(changed, STEP_DOWN)["level"] = "partial_hospitalization"
    for name in STEP_DOWN_CASES:
        case(changed, name)["expect"].update(
            level="partial_hospitalization", iop="higher_level_needed"
        )
    return changed


async def version(client: httpx.AsyncClient, number: int) -> httpx.Response:
    response = await client.get(f"{VERSIONS}/{number}")
    assert response.status_code == 200, response.text
    return response


async def statuses(
    client: httpx.AsyncClient, key: str = KEY, owner: str = "shared"
) -> dict[int, str]:
    """Version number → status, as listed by the API."""
    response = await client.get(f"{RULE_SETS}/{owner}/{key}/versions")
    assert response.status_code == 200, response.text
    return {row["version"]: row["status"] for row in response.json()}


async def default_document(client: httpx.AsyncClient) -> dict[str, Any]:
    """Version 1's document (the shipped default rule set)."""
    content: dict[str, Any] = (await version(client, 1)).json()["content"]
    return content


async def create_draft(client: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(VERSIONS, json=document)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def copy_of_version_1(client: httpx.AsyncClient) -> int:
    response = await client.post(VERSIONS, params={"copy_from": 1})
    assert response.status_code == 201, response.text
    number: int = response.json()["version"]
    return number


async def publish(client: httpx.AsyncClient, number: int) -> None:
    response = await client.post(f"{VERSIONS}/{number}/publish")
    assert response.status_code == 200, response.text


async def activate(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
    response = await client.post(f"{VERSIONS}/{number}/activate")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def published_step_down_version(client: httpx.AsyncClient) -> int:
    """A new version with the step-down change, published (not active)."""
    draft = await create_draft(client, stepping_down_to_php(await default_document(client)))
    await publish(client, draft["version"])
    number: int = draft["version"]
    return number


async def screen(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """Store a screening of ``examples/<name>.json`` under the active version."""
    return await create(client, example(name))


async def screened_by(client: httpx.AsyncClient, name: str) -> int:
    """The version that decides a new screening of ``examples/<name>.json``."""
    number: int = (await screen(client, name))["rule_set"]["version"]
    return number


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Poll ``check`` until it holds; fail once ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"still false after {within} s"
        await asyncio.sleep(0.05)
