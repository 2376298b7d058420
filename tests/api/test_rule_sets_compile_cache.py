"""Stored versions are compiled once per content: a copy of a version, its publication and
screenings pinned to either version share one compilation, and each still reports its own
version number."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.rulesets.compiled import CompiledVersions
from tests.api.rule_sets_support import copy_of_version_1, publish, version
from tests.support.examples import example


async def test_versions_with_identical_content_share_one_compilation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    compiled = CompiledVersions()  # this process has compiled nothing yet
    app.state.rule_set_cache.compiled = compiled

    v2 = await copy_of_version_1(client)
    await publish(client, v2)
    answers = example("adult-iop-with-barriers")
    bodies = [
        (
            await client.post(
                "/v1/screenings/evaluate",
                json={"answers": answers, "rule_set": {"owner": "shared", "version": number}},
            )
        ).json()
        for number in (1, v2)
    ]

    assert compiled.compilations == 1
    assert len(compiled) == 1
    sha256 = (await version(client, 1)).json()["sha256"]
    assert [body["rule_set"]["version"] for body in bodies] == [1, v2]
    assert [body["determination"]["rule_set"] for body in bodies] == [
        {"key": "iop-level-of-care", "version": str(number), "sha256": sha256} for number in (1, v2)
    ]
    one, two = (body["determination"] | {"rule_set": None} for body in bodies)
    assert one == two
