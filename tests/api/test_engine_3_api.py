"""Engine 3.0.0 over the API: a draft of semantics 2 that uses what semantics 3 adds is refused
naming where, the validation report lists unread questions, and a screening shows the new
fields (documented in the OpenAPI schema)."""

from __future__ import annotations

import httpx

from app.engine.determination import CURRENT_SEMANTICS
from tests.api.rule_sets_support import VERSIONS, default_document
from tests.support.examples import screen
from tests.support.problems import assert_problem


async def test_a_semantics_2_draft_may_not_list_context(client: httpx.AsyncClient) -> None:
    document = await default_document(client)
    assert document["semantics"] == CURRENT_SEMANTICS
    document = {**document, "semantics": 2, "context": ["respondent.answered_by"]}
    problem = assert_problem(await client.post(VERSIONS, json=document), 422, "validation-error")
    assert any(error["pointer"] == "#/semantics" for error in problem["errors"])


async def test_the_validation_report_lists_unread_questions(client: httpx.AsyncClient) -> None:
    report = (await client.post(f"{VERSIONS}/1/validate")).json()
    assert isinstance(report["unread_questions"], list)
    assert report["semantics"] == CURRENT_SEMANTICS


async def test_a_screening_shows_the_engine_3_fields(client: httpx.AsyncClient) -> None:
    determination = (await screen(client)).json()["determination"]
    assert determination["engine_version"] == "3.0.0"
    assert {"contradictions", "context", "answers_not_used"} <= set(determination)
    assert all("relation" in level for level in determination["eliminated"])
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    properties = schema["Determination"]["properties"]
    assert {"contradictions", "context", "answers_not_used"} <= set(properties)
