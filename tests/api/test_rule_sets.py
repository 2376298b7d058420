"""Rule sets through the public API: reading, drafts (JSON, YAML, copies, import), editing with
If-Match, validation and publishing, diff, simulation and export.

Activation, retirement and concurrency are in test_rule_sets_lifecycle.py. Every test starts
from the seeded default rule set: ``iop-level-of-care`` version 1, published and active.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.kernel.errors import ServiceUnavailable
from app.kernel.settings import Settings
from app.rulesets.work import RULE_SET_WORK
from app.security.principal import Scope
from tests.api.rule_sets_support import (
    KEY,
    NEVER_FIRES,
    RULE_SETS,
    SHARED_SETS,
    STEP_DOWN,
    STEP_DOWN_CASES,
    VERSIONS,
    case,
    copy_of_version_1,
    create_draft,
    default_document,
    from_yaml,
    label_of,
    named,
    publish,
    rule,
    screen,
    stage,
    statuses,
    stepping_down_to_php,
    to_yaml,
    version,
)
from tests.support.apps import admin_client, http_client, new_key, running
from tests.support.problems import assert_problem

# --- reading ---------------------------------------------------------------------------------


async def test_lists_rule_sets_and_versions(client: httpx.AsyncClient) -> None:
    listed = await client.get(RULE_SETS)
    assert listed.status_code == 200
    [summary] = listed.json()
    assert summary["key"] == KEY
    assert summary["title"]
    assert (summary["active_version"], summary["latest_version"], summary["versions"]) == (1, 1, 1)

    versions = await client.get(VERSIONS)
    assert versions.status_code == 200
    [row] = versions.json()
    assert (row["key"], row["version"], row["status"]) == (KEY, 1, "active")
    assert "content" not in row


async def test_gets_a_version_with_content_status_sha256_history_and_etag(
    client: httpx.AsyncClient,
) -> None:
    response = await version(client, 1)

    body = response.json()
    assert (body["key"], body["version"], body["status"]) == (KEY, 1, "active")
    assert body["content"]["key"] == KEY
    assert {s["stage"] for s in body["content"]["stages"]} >= {"safety", "placement"}
    assert len(body["sha256"]) == 64
    assert body["sha256"] == (await client.get(VERSIONS)).json()[0]["sha256"]
    for action in ("created", "published", "activated"):
        assert body[f"{action}_by"] == "system"
        assert body[f"{action}_at"] is not None
    assert (body["retired_by"], body["retired_at"]) == (None, None)
    assert response.headers["etag"].startswith('"')


async def test_an_unknown_rule_set_or_version_is_404(client: httpx.AsyncClient) -> None:
    unknown = [
        ("GET", f"{SHARED_SETS}/no-such-set/versions"),
        ("GET", f"{SHARED_SETS}/no-such-set/versions/1"),
        ("GET", f"{VERSIONS}/99"),
        ("GET", f"{VERSIONS}/99/export"),
        ("GET", f"{SHARED_SETS}/{KEY}/diff?from=1&to=99"),
        ("GET", f"{SHARED_SETS}/no-such-set/diff?from=1&to=1"),
        ("POST", f"{VERSIONS}/99/validate"),
        ("POST", f"{VERSIONS}/99/publish"),
        ("POST", f"{VERSIONS}/99/activate"),
        ("POST", f"{SHARED_SETS}/no-such-set/versions/1/activate"),
        ("POST", f"{VERSIONS}/99/retire"),
        ("POST", f"{VERSIONS}/99/simulate"),
        ("POST", f"{VERSIONS}?copy_from=99"),
        ("DELETE", f"{VERSIONS}/99"),
        ("DELETE", f"{SHARED_SETS}/no-such-set/versions/1"),
    ]
    for method, path in unknown:
        response = await client.request(method, path, headers={"If-Match": "*"})
        assert response.status_code == 404, (method, path, response.text)
        assert_problem(response, 404)
    assert await statuses(client) == {1: "active"}


# --- creating drafts ---------------------------------------------------------------------------


async def test_creates_a_draft_from_json(app: FastAPI, client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    document["title"] = "IOP screening, clinic edition"

    response = await client.post(VERSIONS, json=document, headers=await named(app, "dr-jones"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{VERSIONS}/2"
    assert (body["version"], body["status"]) == (2, "draft")
    assert body["title"] == "IOP screening, clinic edition"
    assert body["content"] == document
    assert re.match(label_of("dr-jones"), body["created_by"])
    assert body["parent_version"] is None
    assert (body["published_by"], body["activated_by"]) == (None, None)
    assert body["sha256"] != (await version(client, 1)).json()["sha256"]
    assert (await version(client, 2)).headers["etag"] == response.headers["etag"]
    assert await statuses(client) == {2: "draft", 1: "active"}


async def test_creates_a_draft_from_yaml(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    document["title"] = "From YAML"
    as_json = await create_draft(client, document)

    response = await client.post(
        VERSIONS, content=to_yaml(document), headers={"Content-Type": "application/yaml"}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["status"], body["title"]) == (3, "draft", "From YAML")
    assert body["content"] == document
    assert body["sha256"] == as_json["sha256"]


async def test_copies_a_version_when_the_body_is_empty(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    original = (await version(client, 1)).json()

    response = await client.post(
        VERSIONS, params={"copy_from": 1}, headers=await named(app, "dr-a")
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["status"], body["parent_version"]) == (2, "draft", 1)
    assert re.match(label_of("dr-a"), body["created_by"])
    assert body["content"] == original["content"]
    assert body["sha256"] == original["sha256"]

    assert_problem(await client.post(VERSIONS), 422)  # neither a document nor copy_from
    assert await statuses(client) == {2: "draft", 1: "active"}


async def test_the_documents_key_must_match_the_url(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    document["key"] = "another-rule-set"

    body = assert_problem(await client.post(VERSIONS, json=document), 422)

    assert [error["pointer"] for error in body["errors"]] == ["#/key"]
    assert await statuses(client) == {1: "active"}
    assert [s["key"] for s in (await client.get(RULE_SETS)).json()] == [KEY]


async def test_a_rule_that_does_not_compile_is_named(client: httpx.AsyncClient) -> None:
    broken = {
        "place.iop-step-up": ("treatment_history.outpatient_not_effective &&", "expected"),
        "place.iop-severe-symptoms": ('domains.psychiatrc >= "severe"', "unknown fact"),
    }
    for rule_id, (when, message) in broken.items():
        document = await default_document(client)
        rule(document, rule_id)["when"] = when

        body = assert_problem(await client.post(VERSIONS, json=document), 422)

        [error] = body["errors"]
        assert rule_id in error["detail"]
        assert message in error["detail"]
        assert error["pointer"].startswith("#/stages/")
        assert error["pointer"].endswith("/when")
    assert await statuses(client) == {1: "active"}


async def test_a_duplicate_rule_id_is_named(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    placement = stage(document, "placement")
    placement["rules"].append({**placement["rules"][0], "description": "A second one."})
    duplicate = placement["rules"][0]["id"]

    body = assert_problem(await client.post(VERSIONS, json=document), 422)

    assert any(
        duplicate in error["detail"] and "duplicate" in error["detail"] for error in body["errors"]
    )
    assert await statuses(client) == {1: "active"}


async def test_a_body_that_is_not_a_rule_set_document_is_refused(
    client: httpx.AsyncClient,
) -> None:
    for content_type in ("text/plain", "application/xml", "multipart/form-data"):
        response = await client.post(
            VERSIONS, content=b"key: iop-level-of-care", headers={"Content-Type": content_type}
        )
        assert_problem(response, 415)
    yaml_syntax = await client.post(
        VERSIONS, content=b"key: [unclosed\n", headers={"Content-Type": "application/yaml"}
    )
    assert_problem(yaml_syntax, 422)
    malformed = await client.post(
        VERSIONS, content=b'{"key": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 400)
    assert_problem(await client.post(VERSIONS, json=["key", KEY]), 400)
    assert await statuses(client) == {1: "active"}


async def test_a_document_that_expands_or_nests_without_bound_is_refused(
    client: httpx.AsyncClient,
) -> None:
    document = await default_document(client)
    nested: list[object] = []
    for _ in range(300):
        nested = [nested]
    deep = {**document, "fixtures": {**document["fixtures"], "deep": {"x": nested}}}
    aliases = [b"    a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
        f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]".encode() for i in range(1, 9)
    ]  # about 400 bytes that expand to 10^9 numbers
    bomb = to_yaml(document).replace(
        b"fixtures:\n", b"fixtures:\n  bomb:\n" + b"\n".join(aliases) + b"\n", 1
    )

    refused = [
        await client.post(VERSIONS, json=deep),
        await client.post(VERSIONS, content=bomb, headers={"Content-Type": "application/yaml"}),
        await client.post(
            f"{SHARED_SETS}/import",
            content=b"[" * 1000 + b"]" * 1000,
            headers={"Content-Type": "application/yaml"},
        ),
    ]

    for response in refused:
        assert_problem(response, 422)
    assert await statuses(client) == {1: "active"}


async def test_import_creates_a_draft_for_the_documents_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    document = await default_document(client)

    same_key = await client.post(f"{SHARED_SETS}/import", json=document)
    assert same_key.status_code == 201, same_key.text
    assert (same_key.json()["key"], same_key.json()["version"]) == (KEY, 2)
    assert same_key.headers["location"] == f"{VERSIONS}/2"

    document["key"] = "clinic-variant"
    new_key = await client.post(
        f"{SHARED_SETS}/import", json=document, headers=await named(app, "ops")
    )
    assert new_key.status_code == 201, new_key.text
    body = new_key.json()
    assert (body["key"], body["version"], body["status"]) == ("clinic-variant", 1, "draft")
    assert re.match(label_of("ops"), body["created_by"])
    assert new_key.headers["location"] == f"{SHARED_SETS}/clinic-variant/versions/1"

    summaries = {s["key"]: s for s in (await client.get(RULE_SETS)).json()}
    assert summaries["clinic-variant"]["active_version"] is None
    assert summaries["clinic-variant"]["latest_version"] == 1
    assert summaries[KEY]["versions"] == 2
    assert await statuses(client, "clinic-variant") == {1: "draft"}

    assert_problem(await client.post(f"{SHARED_SETS}/import"), 400)
    xml = await client.post(
        f"{SHARED_SETS}/import", content=b"<x/>", headers={"Content-Type": "application/xml"}
    )
    assert_problem(xml, 415)
    assert len((await client.get(RULE_SETS)).json()) == 2


# --- editing drafts (If-Match) -----------------------------------------------------------------


async def test_updating_a_draft_needs_the_current_etag(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    created = await client.post(VERSIONS, json=document)
    first_etag = created.headers["etag"]
    document["title"] = "First edit"

    assert_problem(await client.put(f"{VERSIONS}/2", json=document), 428)
    assert (await version(client, 2)).headers["etag"] == first_etag

    updated = await client.put(f"{VERSIONS}/2", json=document, headers={"If-Match": first_etag})
    assert updated.status_code == 200, updated.text
    second_etag = updated.headers["etag"]
    assert second_etag != first_etag
    assert (updated.json()["title"], updated.json()["status"]) == ("First edit", "draft")
    assert updated.json()["content"] == document
    assert updated.json()["sha256"] != created.json()["sha256"]

    stale = copy.deepcopy(document)
    stale["title"] = "Edit from a stale copy"
    rejected = await client.put(f"{VERSIONS}/2", json=stale, headers={"If-Match": first_etag})
    assert_problem(rejected, 412)
    assert rejected.headers["etag"] == second_etag

    current = await version(client, 2)
    assert current.headers["etag"] == second_etag
    assert current.json()["title"] == "First edit"
    assert current.json()["sha256"] == updated.json()["sha256"]


async def test_an_invalid_update_changes_nothing(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    created = await client.post(VERSIONS, json=document)
    broken = copy.deepcopy(document)
    rule(broken, STEP_DOWN)["when"] = "no_such.fact"
    moved = copy.deepcopy(document)
    moved["key"] = "somewhere-else"

    for body in (broken, moved):
        response = await client.put(
            f"{VERSIONS}/2", json=body, headers={"If-Match": created.headers["etag"]}
        )
        assert_problem(response, 422)

    current = await version(client, 2)
    assert current.headers["etag"] == created.headers["etag"]
    assert current.json()["content"] == document


async def test_published_versions_are_immutable(client: httpx.AsyncClient) -> None:
    created = await client.post(VERSIONS, json=await default_document(client))
    await publish(client, 2)
    for number in (1, 2):  # the active version and a published one
        before = await version(client, number)
        document = copy.deepcopy(before.json()["content"])
        document["title"] = "Tampered"
        for etag in (before.headers["etag"], created.headers["etag"], "*", None):
            headers = {"If-Match": etag} if etag else {}
            put = await client.put(f"{VERSIONS}/{number}", json=document, headers=headers)
            assert_problem(put, 409)
            assert_problem(await client.delete(f"{VERSIONS}/{number}", headers=headers), 409)
        assert_problem(await client.post(f"{VERSIONS}/{number}/publish"), 409)

        after = await version(client, number)
        assert after.json() == before.json()
        assert after.headers["etag"] == before.headers["etag"]


async def test_deletes_a_draft_with_if_match(client: httpx.AsyncClient) -> None:
    created = await client.post(VERSIONS, json=await default_document(client))
    etag = created.headers["etag"]

    assert_problem(await client.delete(f"{VERSIONS}/2"), 428)
    assert_problem(await client.delete(f"{VERSIONS}/2", headers={"If-Match": '"stale.0"'}), 412)
    assert await statuses(client) == {2: "draft", 1: "active"}

    deleted = await client.delete(f"{VERSIONS}/2", headers={"If-Match": etag})
    assert deleted.status_code == 204
    assert deleted.content == b""

    assert_problem(await client.get(f"{VERSIONS}/2"), 404)
    assert_problem(await client.delete(f"{VERSIONS}/2", headers={"If-Match": etag}), 404)
    assert await statuses(client) == {1: "active"}


async def test_deleting_the_only_draft_of_an_imported_rule_set(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    document["key"] = "clinic-variant"
    imported = await client.post(f"{SHARED_SETS}/import", json=document)
    path = f"{SHARED_SETS}/clinic-variant/versions"

    deleted = await client.delete(f"{path}/1", headers={"If-Match": imported.headers["etag"]})

    assert deleted.status_code == 204
    listed = await client.get(path)
    assert (listed.status_code, listed.json()) == (200, [])
    summary = {s["key"]: s for s in (await client.get(RULE_SETS)).json()}["clinic-variant"]
    assert (summary["versions"], summary["active_version"]) == (0, None)


# --- validation and publishing -----------------------------------------------------------------


async def test_validation_reports_failing_cases_and_rules_that_never_fire(
    client: httpx.AsyncClient,
) -> None:
    document = await default_document(client)
    case(document, "Baseline adult outpatient")["expect"]["level"] = "intensive_outpatient"
    stage(document, "placement")["rules"].append(NEVER_FIRES)
    draft = await create_draft(client, document)

    response = await client.post(f"{VERSIONS}/2/validate")

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["compiles"], report["problems"], report["publishable"]) == (True, [], False)
    failing = [c for c in report["cases"] if not c["passed"]]
    assert [c["name"] for c in failing] == ["Baseline adult outpatient"]
    assert any("level" in failure for failure in failing[0]["failures"])
    assert report["cases_passed"] == report["cases_total"] - 1
    assert report["rules_never_fired"] == ["place.never-fires"]
    assert report["coverage"] < 1

    refused = assert_problem(await client.post(f"{VERSIONS}/2/publish"), 422)
    assert refused["report"]["publishable"] is False
    assert refused["report"]["rules_never_fired"] == ["place.never-fires"]
    assert await statuses(client) == {2: "draft", 1: "active"}
    assert (await version(client, 2)).json()["sha256"] == draft["sha256"]


async def test_a_rule_that_never_fires_alone_blocks_publishing(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    stage(document, "placement")["rules"].append(NEVER_FIRES)
    await create_draft(client, document)

    report = (await client.post(f"{VERSIONS}/2/validate")).json()

    assert report["cases_passed"] == report["cases_total"]
    assert report["rules_never_fired"] == ["place.never-fires"]
    assert report["publishable"] is False
    assert_problem(await client.post(f"{VERSIONS}/2/publish"), 422)
    assert (await version(client, 2)).json()["status"] == "draft"


async def test_publishes_a_draft_that_passes(app: FastAPI, client: httpx.AsyncClient) -> None:
    draft = await create_draft(client, stepping_down_to_php(await default_document(client)))
    report = (await client.post(f"{VERSIONS}/2/validate")).json()
    assert (report["publishable"], report["coverage"], report["rules_never_fired"]) == (
        True,
        1,
        [],
    )

    response = await client.post(f"{VERSIONS}/2/publish", headers=await named(app, "dr-review"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "published"
    assert body["sha256"] == draft["sha256"]
    assert body["content"] == draft["content"]
    assert body["created_by"] == draft["created_by"]  # the default client of the test
    assert re.match(label_of("dr-review"), body["published_by"])
    assert body["published_at"] is not None
    assert body["activated_by"] is None
    assert await statuses(client) == {2: "published", 1: "active"}


# --- diff, simulate, export --------------------------------------------------------------------


async def test_diff_lists_rule_changes_and_behaviour_changes(client: httpx.AsyncClient) -> None:
    document = stepping_down_to_php(await default_document(client))
    document["title"] = "IOP screening, step-down to PHP"
    stage(document, "placement")["rules"].append(NEVER_FIRES)
    await create_draft(client, document)

    response = await client.get(f"{SHARED_SETS}/{KEY}/diff", params={"from": 1, "to": 2})

    assert response.status_code == 200, response.text
    diff = response.json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    changes = {(change["rule_id"], change["change"]) for change in diff["rules"]}
    assert changes == {(STEP_DOWN, "changed"), ("place.never-fires", "added")}
    changed = next(change for change in diff["rules"] if change["change"] == "changed")
    assert changed["stage"] == "placement"
    assert changed["before"]["level"] == "intensive_outpatient"
    assert changed["after"]["level"] == "partial_hospitalization"
    assert diff["other_changes"] == ["title"]
    assert diff["cases_compared"] >= len(document["tests"])
    behaviour = {difference["case"]: difference for difference in diff["behaviour_changes"]}
    assert set(behaviour) == set(STEP_DOWN_CASES)
    for difference in behaviour.values():
        assert difference["before"]["level"] == "intensive_outpatient"
        assert difference["after"]["level"] == "partial_hospitalization"
        assert difference["after"]["iop"] == "higher_level_needed"

    backwards = (await client.get(f"{SHARED_SETS}/{KEY}/diff?from=2&to=1")).json()
    assert {(c["rule_id"], c["change"]) for c in backwards["rules"]} == {
        (STEP_DOWN, "changed"),
        ("place.never-fires", "removed"),
    }
    assert {d["case"] for d in backwards["behaviour_changes"]} == set(STEP_DOWN_CASES)

    same = (await client.get(f"{SHARED_SETS}/{KEY}/diff?from=1&to=1")).json()
    assert (same["rules"], same["behaviour_changes"], same["other_changes"]) == ([], [], [])


async def test_simulation_counts_changed_determinations_over_recent_screenings(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    unchanged = [
        await screen(client, name)
        for name in ("adult-iop-suitable", "emergency-suicide-risk", "insufficient-information")
    ]
    stepping_down = [await screen(client, "adolescent-step-down") for _ in range(2)]
    await create_draft(client, stepping_down_to_php(await default_document(client)))

    response = await client.post(f"{VERSIONS}/2/simulate")

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["key"], report["version"]) == (KEY, 2)
    assert report["screenings_considered"] == 5
    assert (report["changed"], report["unchanged"]) == (2, 3)
    assert report["sample_limit"] == settings.simulation_sample_size
    [moved] = [t for t in report["transitions"] if t["from_level"] != t["to_level"]]
    assert (moved["from_level"], moved["to_level"], moved["count"]) == (
        "intensive_outpatient",
        "partial_hospitalization",
        2,
    )
    assert set(moved["example_screening_ids"]) == {s["id"] for s in stepping_down}
    stayed = {
        screening_id
        for t in report["transitions"]
        if t is not moved
        for screening_id in t["example_screening_ids"]
    }
    assert stayed == {s["id"] for s in unchanged}
    assert sum(t["count"] for t in report["transitions"]) == 5

    recent = (await client.post(f"{VERSIONS}/2/simulate", params={"sample": 2})).json()
    assert (recent["screenings_considered"], recent["changed"], recent["sample_limit"]) == (2, 2, 2)
    capped = (await client.post(f"{VERSIONS}/2/simulate", params={"sample": 10_000})).json()
    assert capped["sample_limit"] == settings.simulation_sample_size
    assert capped["screenings_considered"] == 5
    assert (await client.post(f"{VERSIONS}/1/simulate")).json()["changed"] == 0
    assert await statuses(client) == {2: "draft", 1: "active"}


async def test_simulation_is_bounded_by_the_configured_sample_size(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    for _ in range(4):
        await screen(client, "adolescent-step-down")
    await create_draft(client, stepping_down_to_php(await default_document(client)))

    async with (
        running(settings.model_copy(update={"simulation_sample_size": 3})) as small,
        admin_client(small, "small") as other,
    ):
        report = (await other.post(f"{VERSIONS}/2/simulate")).json()

    assert (report["screenings_considered"], report["changed"], report["sample_limit"]) == (3, 3, 3)


async def test_export_round_trips_through_import(app: FastAPI, client: httpx.AsyncClient) -> None:
    original = (await version(client, 1)).json()

    exported = await client.get(f"{VERSIONS}/1/export")

    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    assert f'filename="shared-{KEY}-v1.yaml"' in exported.headers["content-disposition"]
    assert exported.text.startswith(f"key: {KEY}\n")
    assert from_yaml(exported.content) == original["content"]

    imported = await client.post(
        f"{SHARED_SETS}/import",
        content=exported.content,
        headers={"Content-Type": "application/yaml"} | await named(app, "importer"),
    )

    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert (body["key"], body["version"], body["status"]) == (KEY, 2, "draft")
    assert body["sha256"] == original["sha256"]
    assert body["content"] == original["content"]
    assert re.match(label_of("importer"), body["created_by"])


async def test_heavy_rule_set_work_runs_in_worker_processes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a draft (parsing and compiling it), exporting, validating (its test cases),
    diffing and simulating a rule set are CPU work that grows with its size: each runs in a
    worker process, so that the process serving requests keeps its interpreter for other
    tenants' requests meanwhile."""
    ran: list[str] = []
    submit = RULE_SET_WORK.run

    async def watched(tenant: str, work: Callable[..., Any], *args: Any) -> Any:
        ran.append(work.__name__)
        return await submit(tenant, work, *args)

    monkeypatch.setattr(RULE_SET_WORK, "run", watched)
    await screen(client, "adult-iop-suitable")  # something to simulate over
    draft = await copy_of_version_1(client)
    assert (await client.get(f"{VERSIONS}/{draft}/export")).status_code == 200
    assert (await client.post(f"{VERSIONS}/{draft}/validate")).status_code == 200
    assert (await client.get(f"{SHARED_SETS}/{KEY}/diff?from=1&to={draft}")).status_code == 200
    assert (await client.post(f"{VERSIONS}/{draft}/simulate")).status_code == 200
    assert ran == ["draft", "export", "report", "diff", "simulation"]
    assert await submit("default", os.getpid) != os.getpid()  # another process


async def test_a_tenant_has_a_bounded_share_of_the_rule_set_workers(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RULE_SET_WORK, "per_tenant", 1)
    export = f"{SHARED_SETS}/{KEY}/versions/1/export"
    busy = asyncio.create_task(RULE_SET_WORK.run("default", time.sleep, 2.0))
    await asyncio.sleep(0)  # submitted: the operator tenant's one operation is under way
    try:
        refused = await client.get(export)
        other_tenant = await new_key(app, tenant="clinic-b", scopes={Scope.RULESETS_READ})
        async with http_client(app, other_tenant) as elsewhere:
            served = await elsewhere.get(export)
    finally:
        await busy
    body = assert_problem(refused, 429, "rate-limited")
    assert "rule-set operations" in body["detail"]
    assert refused.headers["retry-after"] == "5"
    assert served.status_code == 200, served.text
    assert (await client.get(export)).status_code == 200  # the slot is free again


async def test_a_rule_set_worker_that_dies_fails_its_operation_with_503_and_is_replaced() -> None:
    with pytest.raises(ServiceUnavailable) as failed:
        await RULE_SET_WORK.run("default", os._exit, 1)  # as if killed for memory
    assert failed.value.headers["Retry-After"] == "5"
    assert await RULE_SET_WORK.run("default", os.getpid) != os.getpid()
