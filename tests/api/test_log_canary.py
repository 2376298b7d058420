"""Log canary: no submitted value, answer or secret ever reaches a log line.

The security requirement: access and application logs carry ids, routes, status codes and
timings, never bodies or answer values; validation errors name the field and the rule, never the
value. Recognisable sentinels (the text ``CANARY-7Q9X`` in every free-text field, header, query
filter and path id, and unusual numbers in every numeric answer) go through every operation of
the OpenAPI schema, once accepted and once rejected, plus an unexpected server error; then no
captured record may contain one. That includes the FHIR R4 operations (sentinels in the
QuestionnaireResponse's subject, identifier, encounter, linkIds and answers; in the chart
``$populate`` reads; in search and ``$expand`` parameters) and the CDS Hooks
services, called as a configured CDS client with a freshly signed JWT each time (sentinels in the
context, the prefetched response, the feedback comment and the token claims); the tokens, like
the API keys, must not be logged either.

In process, one module-scoped drive captures every record at DEBUG (the root logger and the
``carelevel``, ``uvicorn``, ``sqlalchemy``, ``aiosqlite`` and ``asyncpg`` loggers, all
propagating: what ``caplog.set_level(logging.DEBUG)`` does, for the whole module), so that the
leak check, the access-log check, the status check and the coverage check report separately.
Out of process, the real ``carelevel serve`` at CARELEVEL_LOG_LEVEL=DEBUG, over HTTP:
tests/reliability/test_log_canary_server.py (``make reliability``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.examples import response_for
from app.fhir.terminology import Vocabulary
from app.kernel.issuers import CdsClient
from app.kernel.settings import Settings
from tests.support.apps import BASE_URL, empty_tables, http_client, new_key, running
from tests.support.examples import EXAMPLES
from tests.support.tokens import public_jwk

TEXT = "CANARY-7Q9X"  # found case-insensitively: slugs carry it in lower case
SLUG = TEXT.lower()
TEXT_PATTERN = re.compile(re.escape(TEXT), re.IGNORECASE)
# Accepted values: inside each field's range, and with digits no log line has a reason to show.
IN_RANGE: dict[tuple[str, str], int | float] = {
    ("medical", "percent_healthy_body_weight"): 287.31,
    ("medical", "potassium_mmol_l"): 7.3181,
    ("medical", "temperature_c"): 41.739,
    ("medical", "heart_rate_bpm"): 237,
    ("medical", "systolic_bp_mmhg"): 283,
    ("medical", "diastolic_bp_mmhg"): 187,
    ("medical", "glucose_mg_dl"): 947,
    ("logistics", "travel_minutes_one_way"): 587,
    ("logistics", "hours_per_week_available"): 163.77,
}
OUT_OF_RANGE_FLOAT = 7318.25
OUT_OF_RANGE_INT = 987654321
NUMBERS = (*IN_RANGE.values(), OUT_OF_RANGE_FLOAT, OUT_OF_RANGE_INT)
# A number as a token of its own: not part of a longer number, a word or a uuid, and not the
# integral part of another decimal ("duration_ms=587.2" is a timing, not the answer 587).
NUMBER_PATTERNS = [re.compile(rf"(?<![\w.]){re.escape(str(n))}(?!\w|\.\d)") for n in NUMBERS]
BAD_REQUEST_ID = f"{TEXT} <{OUT_OF_RANGE_INT}>"  # invalid characters: replaced, never logged
API_KEY = re.compile(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")
ACCESS_LINE = re.compile(
    r"^method=(?P<method>[A-Z]+) route=(?P<route>\S+) status=(?P<status>\d{3}) "
    r"duration_ms=\d+\.\d request_id=(?P<request_id>\S+) client_id=\S+ tenant=\S+$"
)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# Operations that take no input at all: nothing a caller sends can be rejected.
NOTHING_TO_REJECT = frozenset({("GET", "/healthz"), ("GET", "/readyz")})
# The test's own HTTP client logs its request URLs; everything else is the service.
CLIENT_SIDE_LOGGERS = ("httpx", "httpcore")
CAPTURED_LOGGERS = (
    "carelevel",
    "carelevel.access",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
)

SHARED = "/v1/rule-sets/{owner}/{key}"
VERSION = SHARED + "/versions/{version}"
DEFAULT_SET = {"owner": "shared", "key": "iop-level-of-care"}

Json = dict[str, Any]


def leaks(text: str, secrets: tuple[str, ...] = ()) -> list[str]:
    """The sentinels (and secrets) ``text`` contains."""
    found = [TEXT] if TEXT_PATTERN.search(text) else []
    found += [
        str(number)
        for number, pattern in zip(NUMBERS, NUMBER_PATTERNS, strict=True)
        if str(number) in text and pattern.search(text)
    ]
    found += [f"secret {secret[:12]}…" for secret in secrets if secret in text]
    return found


def example() -> Json:
    answers: Json = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    return answers


def canary_answers() -> Json:
    """The adult IOP example with a sentinel number in every numeric answer (all accepted)."""
    answers = example()
    for (section, name), value in IN_RANGE.items():
        answers.setdefault(section, {})[name] = value
    answers["instruments"]["cows"] = {"total": 43}
    return answers


def with_answer(section: str, name: str, value: Any) -> Json:
    answers = canary_answers()
    answers[section][name] = value
    return answers


def malformed(prefix: str = '{"answers": ') -> bytes:
    return f'{prefix}{{"external_reference": "{TEXT}", "n": {OUT_OF_RANGE_FLOAT}'.encode()


JSON_TYPE = {"content-type": "application/json"}
TEXT_TYPE = {"content-type": "text/plain"}
FHIR_TYPE = {"content-type": "application/fhir+json"}

FHIR = "/fhir/r4"
EVALUATE = FHIR + "/QuestionnaireResponse/$evaluate"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
PATIENT_ID = TEXT  # a valid FHIR id
ANSWER_SPECIAL = VOCABULARY.code_system("answer-special")
CDS_ISSUER, CDS_KID = "https://ehr.example", "ehr-key-1"


def questionnaire_response(answers: Json | None = None, **fields: Any) -> Json:
    """The canary answers as a QuestionnaireResponse about Patient/CANARY-7Q9X, with sentinels
    in its identifier and encounter (and ``fields`` added or replaced)."""
    response = response_for(
        VOCABULARY, canary_answers() if answers is None else answers, subject=f"Patient/{TEXT}"
    )
    response["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:{TEXT}-identifier"}
    response["encounter"] = {"reference": f"Encounter/{TEXT}-{OUT_OF_RANGE_INT}"}
    return response | fields


def with_item(response: Json, link_id: str, answer: list[Json]) -> Json:
    """``response`` with the answer of ``link_id`` (at any depth) replaced."""
    changed = copy.deepcopy(response)

    def replace(items: list[Json]) -> bool:
        for item in items:
            if item.get("linkId") == link_id:
                item["answer"] = answer
                return True
            if replace(item.get("item") or []):
                return True
        return False

    assert replace(changed["item"]), link_id
    return changed


def plus_item(response: Json, item: Json) -> Json:
    """``response`` with one more top-level item."""
    return response | {"item": [*response["item"], item]}


# --- capturing every record -------------------------------------------------------------------


class Capture(logging.Handler):
    """Keeps every record, with its traceback formatted while it is still attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self._formatter.formatException(record.exc_info)
        self.records.append(record)


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write of ``record``: message, arguments, traceback."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: still look at its parts
        message = str(record.msg)
    return "\n".join(
        (
            message,
            str(record.msg),
            repr(record.args),
            record.exc_text or "",
            record.stack_info or "",
        )
    )


@contextlib.contextmanager
def everything_at_debug(capture: Capture) -> Iterator[None]:
    root = logging.getLogger()
    saved = [
        (logger, logger.level, logger.propagate, logger.disabled)
        for logger in [root, *(logging.getLogger(name) for name in CAPTURED_LOGGERS)]
    ]
    # pytest's own handlers would keep (and print on failure) megabytes of DEBUG records
    quieted = [(handler, handler.level) for handler in root.handlers]
    for handler, level in quieted:
        handler.setLevel(max(level, logging.WARNING))
    for logger, *_ in saved:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
        logger.disabled = False
    root.addHandler(capture)
    try:
        yield
    finally:
        root.removeHandler(capture)
        for handler, level in quieted:
            handler.setLevel(level)
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


# --- driving the API --------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    method: str
    route: str  # the template the access line must name ("-" when no route matched)
    status: int
    request_id: str


@dataclass
class Driver:
    http: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    exchanges: list[Exchange] = field(default_factory=list)
    # (method, target, expected, got, body): reported by their own test, so that a wrong
    # status does not hide what the other checks find
    unexpected: list[tuple[str, str, int, int, str]] = field(default_factory=list)

    async def call(
        self,
        method: str,
        route: str | None,
        expect: int,
        *,
        path: Mapping[str, object] | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        anonymous: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request (``route`` formatted with ``path``) with a sentinel X-Request-ID,
        and note it when it does not get ``expect``."""
        target = url or (route or "").format(**(path or {}))
        sent_headers = {"X-Request-ID": BAD_REQUEST_ID, **(headers or {})}
        client = self.anonymous if anonymous else self.http
        response = await client.request(method, target, headers=sent_headers, **kwargs)
        if response.status_code != expect:
            got = (method, target, expect, response.status_code, response.text[:500])
            self.unexpected.append(got)
        request_id = response.headers["x-request-id"]
        assert request_id != BAD_REQUEST_ID
        logged_route = "-" if route is None else route
        self.exchanges.append(Exchange(method, logged_route, response.status_code, request_id))
        return response


async def exercise_screenings(d: Driver) -> str:
    """Every screening operation, accepted and rejected; returns the stored screening's id."""
    s, one = "/v1/screenings", "/v1/screenings/{screening_id}"
    person = f"{TEXT}-person"
    body = {"answers": canary_answers(), "external_reference": f"{TEXT}-ref", "person_id": person}
    idempotent = {"Idempotency-Key": f"{TEXT}-{OUT_OF_RANGE_INT}"}

    stored = (await d.call("POST", s, 201, json=body, headers=idempotent)).json()
    replayed = await d.call("POST", s, 201, json=body, headers=idempotent)
    assert replayed.headers.get("idempotent-replayed") == "true"
    other = body | {"external_reference": f"{TEXT}-other"}
    await d.call("POST", s, 422, json=other, headers=idempotent)  # the key reused
    await d.call("POST", s, 201, json={"answers": canary_answers()})
    screening_id: str = stored["id"]

    rejected: list[Json] = [
        {"answers": with_answer("medical", "percent_healthy_body_weight", OUT_OF_RANGE_FLOAT)},
        {"answers": with_answer("logistics", "travel_minutes_one_way", OUT_OF_RANGE_INT)},
        {"answers": with_answer("logistics", "hours_per_week_available", TEXT)},
        {"answers": with_answer("medical", "glucose_mg_dl", 947.5)},
        {"answers": with_answer("respondent", "age_group", TEXT)},
        {"answers": with_answer("medical", TEXT, OUT_OF_RANGE_INT)},
        {"answers": canary_answers(), TEXT: OUT_OF_RANGE_FLOAT},
        {"answers": canary_answers(), "external_reference": f"{TEXT}\x00{OUT_OF_RANGE_INT}"},
        {"answers": canary_answers(), "external_reference": TEXT * 30},
        {"answers": canary_answers(), "person_id": f"{TEXT} {OUT_OF_RANGE_INT}"},
        {"answers": canary_answers(), "person_id": TEXT * 7},
        {"answers": canary_answers(), "rule_set": {"key": TEXT, "version": OUT_OF_RANGE_INT}},
        {"answers": [TEXT, OUT_OF_RANGE_FLOAT]},
    ]
    phq9 = canary_answers()
    phq9["instruments"]["phq9"]["items"][8] = OUT_OF_RANGE_INT
    rejected.append({"answers": phq9})
    for route in (s, s + "/evaluate"):
        for invalid in rejected:
            await d.call("POST", route, 422, json=invalid)
        await d.call("POST", route, 400, content=malformed(), headers=JSON_TYPE)
        await d.call("POST", route, 415, content=json.dumps(body).encode(), headers=TEXT_TYPE)
    await d.call("POST", s, 422, json={"answers": canary_answers(), "rule_set": {"version": 99}})
    for key in (f"{TEXT} {OUT_OF_RANGE_INT}", TEXT * 20, f"{TEXT}\t"):
        await d.call("POST", s, 422, json=body, headers={"Idempotency-Key": key})
    await d.call("POST", s, 413, content=json.dumps({"answers": TEXT * 10_000}), headers=JSON_TYPE)

    await d.call("POST", s + "/evaluate", 200, json=body)

    filters = {
        "external_reference": f"{TEXT}-ref",
        "limit": 7,
        "created_from": "2020-01-01T00:00:00+00:00",
        "rule_set_key": "iop-level-of-care",
    }
    listed = (await d.call("GET", s, 200, params=filters)).json()
    assert [item["id"] for item in listed["items"]] == [screening_id]
    for bad_filter in (
        {"external_reference": f"{TEXT}\x01"},
        {"level": TEXT},
        {"urgency": TEXT},
        {"limit": OUT_OF_RANGE_INT},
        {"limit": TEXT},
        {"rule_set_key": TEXT},
        {"rule_set_version": TEXT},
        {"created_from": TEXT},
        {"created_to": f"{TEXT}T00:00:00"},
        {"person_id": f"{TEXT}/{OUT_OF_RANGE_INT}"},
    ):
        await d.call("GET", s, 422, params=bad_filter)
    await d.call("GET", s, 400, params={"cursor": TEXT})

    await d.call("GET", one, 200, path={"screening_id": screening_id})
    await d.call("GET", one, 404, path={"screening_id": TEXT})
    await d.call("GET", one, 422, path={"screening_id": TEXT * 7})
    await d.call("GET", one, 422, path={"screening_id": f"{TEXT}.{OUT_OF_RANGE_INT}"})

    replay = one + "/replay"
    await d.call("POST", replay, 200, path={"screening_id": screening_id}, json={})
    await d.call("POST", replay, 404, path={"screening_id": TEXT}, json={})
    for invalid in ({"version": TEXT}, {"owner": TEXT}, {TEXT: OUT_OF_RANGE_INT}):
        await d.call("POST", replay, 422, path={"screening_id": screening_id}, json=invalid)
    await d.call("POST", replay, 422, path={"screening_id": screening_id}, json={"version": 98765})
    await d.call(
        "POST",
        replay,
        400,
        path={"screening_id": screening_id},
        content=malformed("{"),
        headers=JSON_TYPE,
    )

    decision = one + "/decision"
    recommended = stored["determination"]["recommended_level"]
    final = "outpatient" if recommended and recommended["level"] != "outpatient" else "residential"
    decided = {
        "final_level": final,
        "variance_reasons": ["other"],
        "comment": f"{TEXT} comment {OUT_OF_RANGE_FLOAT}",
        "decided_by": f"{TEXT}-clinician",
    }
    await d.call("POST", decision, 201, path={"screening_id": screening_id}, json=decided)
    for invalid in (
        decided | {"final_level": TEXT},
        decided | {"variance_reasons": [TEXT]},
        decided | {"comment": TEXT * 200},
        decided | {"comment": f"{TEXT}\x00"},
        decided | {"comment": None},  # "other" needs a comment
        decided | {"decided_by": f"{TEXT}\n"},
        decided | {"decided_by": TEXT * 20},
        decided | {TEXT: OUT_OF_RANGE_INT},
    ):
        await d.call("POST", decision, 422, path={"screening_id": screening_id}, json=invalid)
    await d.call("POST", decision, 404, path={"screening_id": TEXT}, json=decided)
    await d.call(
        "POST",
        decision,
        400,
        path={"screening_id": screening_id},
        content=malformed("{"),
        headers=JSON_TYPE,
    )
    await d.call(
        "POST",
        decision,
        415,
        path={"screening_id": screening_id},
        content=json.dumps(decided).encode(),
        headers=TEXT_TYPE,
    )

    people = "/v1/people/{person_id}/screenings"
    trajectory = await d.call("GET", people, 200, path={"person_id": person})
    assert [item["id"] for item in trajectory.json()["screenings"]][0] == screening_id
    await d.call("GET", people, 404, path={"person_id": f"{TEXT}-nobody"})
    await d.call("GET", people, 422, path={"person_id": f"{TEXT}.{OUT_OF_RANGE_INT}" * 6})
    await d.call("GET", people, 422, path={"person_id": person}, params={"limit": TEXT})
    return screening_id


def titled(document: Json, label: str) -> Json:
    """``document`` with sentinels in its title, description and first rule's description."""
    changed = copy.deepcopy(document)
    changed["title"] = f"{TEXT} {label} title"
    changed["description"] = f"{TEXT} {label} description {OUT_OF_RANGE_FLOAT}"
    first_rule = changed["stages"][0]["rules"][0]
    first_rule["description"] = f"{first_rule['description']} ({TEXT})"
    return changed


async def exercise_rule_sets(d: Driver) -> None:
    versions = SHARED + "/versions"
    v1 = DEFAULT_SET | {"version": 1}
    await d.call("GET", "/v1/rule-sets", 200)
    await d.call("GET", "/v1/rule-sets", 401, headers={"Authorization": f"Bearer {TEXT}"})
    await d.call("GET", versions, 200, path=DEFAULT_SET)
    await d.call("GET", versions, 422, path={"owner": TEXT, "key": "iop-level-of-care"})
    await d.call("GET", versions, 404, path={"owner": "shared", "key": SLUG})
    document: Json = (await d.call("GET", VERSION, 200, path=v1)).json()["content"]
    await d.call("GET", VERSION, 422, path=DEFAULT_SET | {"version": TEXT})
    await d.call("GET", VERSION, 404, path=DEFAULT_SET | {"version": OUT_OF_RANGE_INT})

    # drafts: A (a document) is edited, published, activated; B (a copy) is deleted
    created = await d.call("POST", versions, 201, path=DEFAULT_SET, json=titled(document, "A"))
    a = DEFAULT_SET | {"version": created.json()["version"]}
    b_created = await d.call("POST", versions, 201, path=DEFAULT_SET, params={"copy_from": 1})
    b = DEFAULT_SET | {"version": b_created.json()["version"]}
    uncompilable = copy.deepcopy(document)
    uncompilable["stages"][0]["rules"][0]["when"] = f'"{TEXT}" &&& {OUT_OF_RANGE_INT} ==='
    await d.call("POST", versions, 422, path=DEFAULT_SET, json=uncompilable)
    await d.call("POST", versions, 422, path=DEFAULT_SET, json={TEXT: OUT_OF_RANGE_FLOAT})
    await d.call("POST", versions, 400, path=DEFAULT_SET, content=malformed(), headers=JSON_TYPE)
    await d.call("POST", versions, 400, path=DEFAULT_SET, json=[TEXT, OUT_OF_RANGE_INT])
    await d.call("POST", versions, 415, path=DEFAULT_SET, content=TEXT, headers=TEXT_TYPE)
    await d.call("POST", versions, 404, path=DEFAULT_SET, params={"copy_from": OUT_OF_RANGE_INT})
    await d.call(
        "POST", versions, 422, path=DEFAULT_SET, params={"copy_from": 1, "copy_from_owner": TEXT}
    )
    await d.call("POST", versions, 422, path={"owner": TEXT, "key": SLUG}, json=document)

    updated = await d.call(
        "PUT",
        VERSION,
        200,
        path=a,
        json=titled(document, "A2"),
        headers={"If-Match": created.headers["etag"]},
    )
    edit = titled(document, "A3")
    await d.call("PUT", VERSION, 412, path=a, headers={"If-Match": f'"{TEXT}"'}, json=edit)
    await d.call("PUT", VERSION, 428, path=a, json=edit)
    await d.call("PUT", VERSION, 422, path=a, headers={"If-Match": TEXT * 30}, json=edit)
    await d.call(
        "PUT",
        VERSION,
        400,
        path=a,
        content=malformed(),
        headers={"If-Match": updated.headers["etag"], **JSON_TYPE},
    )
    unknown = DEFAULT_SET | {"version": OUT_OF_RANGE_INT}
    await d.call("PUT", VERSION, 404, path=unknown, headers={"If-Match": f'"{TEXT}"'}, json=edit)

    await d.call("DELETE", VERSION, 412, path=b, headers={"If-Match": f'"{TEXT}"'})
    await d.call("DELETE", VERSION, 428, path=b)
    await d.call("DELETE", VERSION, 204, path=b, headers={"If-Match": b_created.headers["etag"]})
    await d.call("DELETE", VERSION, 404, path=b, headers={"If-Match": f'"{TEXT}"'})

    imported = titled(document, "import") | {"key": f"{SLUG}-set"}
    await d.call(
        "POST", "/v1/rule-sets/{owner}/import", 201, path={"owner": "default"}, json=imported
    )
    imports = "/v1/rule-sets/{owner}/import"
    await d.call("POST", imports, 422, path={"owner": TEXT}, json=imported)
    await d.call("POST", imports, 422, path={"owner": "default"}, json=imported | {"key": TEXT})
    await d.call("POST", imports, 400, path={"owner": "default"})
    await d.call(
        "POST", imports, 400, path={"owner": "default"}, content=malformed(), headers=JSON_TYPE
    )

    await d.call("POST", VERSION + "/validate", 200, path=a)
    await d.call("POST", VERSION + "/validate", 404, path=DEFAULT_SET | {"version": 98765})
    await d.call("POST", VERSION + "/publish", 200, path=a)
    await d.call("POST", VERSION + "/publish", 409, path=a)
    await d.call("POST", VERSION + "/activate", 200, path=a)
    await d.call("POST", VERSION + "/activate", 404, path=DEFAULT_SET | {"version": 98765})
    await d.call("POST", VERSION + "/retire", 409, path=a)  # the active version
    await d.call("POST", VERSION + "/retire", 200, path=v1)
    await d.call("POST", VERSION + "/retire", 422, path=DEFAULT_SET | {"version": TEXT})

    diff = SHARED + "/diff"
    await d.call("GET", diff, 200, path=DEFAULT_SET, params={"from": 1, "to": a["version"]})
    await d.call("GET", diff, 422, path=DEFAULT_SET, params={"from": TEXT, "to": 1})
    await d.call(
        "GET", diff, 422, path=DEFAULT_SET, params={"from": 1, "to": 1, "from_owner": TEXT}
    )
    await d.call("GET", diff, 404, path=DEFAULT_SET, params={"from": 1, "to": OUT_OF_RANGE_INT})

    simulate = VERSION + "/simulate"
    await d.call("POST", simulate, 200, path=v1, params={"sample": 7})
    await d.call("POST", simulate, 422, path=v1, params={"sample": OUT_OF_RANGE_INT})
    overrides = VERSION + "/overrides"
    await d.call("GET", overrides, 200, path=v1)
    await d.call("GET", overrides, 422, path=DEFAULT_SET | {"version": TEXT})
    await d.call("GET", overrides, 404, path=DEFAULT_SET | {"version": 98765})
    await d.call("GET", VERSION + "/export", 200, path=a)
    await d.call("GET", VERSION + "/export", 404, path=DEFAULT_SET | {"version": 98765})


async def exercise_clients(d: Driver) -> str:
    """Client management, accepted and rejected; returns the new client's key."""
    clients, one = "/v1/clients", "/v1/clients/{client_id}"
    body = {"name": f"{TEXT} client {OUT_OF_RANGE_INT}", "scopes": ["screenings:read"]}
    created = (await d.call("POST", clients, 201, json=body)).json()
    for invalid in (
        body | {"name": f"{TEXT}\x01"},
        body | {"name": TEXT * 30},
        body | {"scopes": [TEXT]},
        body | {"tenant": SLUG},  # another tenant
        body | {"tenant": TEXT},
        body | {TEXT: OUT_OF_RANGE_FLOAT},
    ):
        await d.call("POST", clients, 422, json=invalid)
    await d.call("POST", clients, 400, content=malformed("{"), headers=JSON_TYPE)

    await d.call("GET", clients, 200, params={"limit": 3})
    await d.call("GET", clients, 400, params={"cursor": TEXT})
    await d.call("GET", clients, 422, params={"limit": OUT_OF_RANGE_INT})
    await d.call("GET", one, 200, path={"client_id": created["id"]})
    await d.call("GET", one, 404, path={"client_id": TEXT})
    await d.call("GET", one, 422, path={"client_id": f"{TEXT}.{OUT_OF_RANGE_INT}"})
    await d.call("POST", one + "/revoke", 200, path={"client_id": created["id"]})
    await d.call("POST", one + "/revoke", 404, path={"client_id": TEXT})
    revoked = {"Authorization": f"Bearer {created['api_key']}"}
    await d.call("GET", "/v1/questionnaire", 401, headers=revoked)
    key: str = created["api_key"]
    return key


def canary_program() -> Json:
    """A program with a sentinel in every free-text field and code, and sentinel numbers."""
    return {
        "name": f"{TEXT} program",
        "description": f"{TEXT}\n{OUT_OF_RANGE_INT}",
        "operated_by": TEXT,
        "level": "intensive_outpatient",
        "populations": ["adult"],
        "specialties": ["substance_use"],
        "modality": "hybrid",
        "timetable": [{"day": "monday", "start": "18:00", "end": "21:00", "modality": "in_person"}],
        "location": {"label": TEXT, "address": TEXT, "latitude": 41.739, "longitude": 7.3181},
        "travel_times": [{"area": TEXT, "minutes": 587}],
        "languages": ["en"],
        "capacity": {"places": 237, "open_places": 187, "waitlist_weeks": 1.5},
        "payers": [TEXT],
        "contact": {"phone": TEXT, "email": f"{SLUG}@example.org", "url": TEXT},
    }


async def exercise_programs(d: Driver) -> None:
    """The program directory, accepted and rejected."""
    programs, one = "/v1/programs", "/v1/programs/{program_id}"
    body = canary_program()
    created = (await d.call("POST", programs, 201, json=body)).json()
    path = {"program_id": created["id"]}
    session = {"day": "monday", "start": "21:00", "end": "18:00", "modality": "in_person"}
    for invalid in (
        body | {"name": f"{TEXT}\x01"},
        body | {"name": TEXT * 30},
        body | {"languages": [TEXT]},
        body | {"level": TEXT},
        body | {"timetable": [session]},
        body | {"travel_times": [{"area": TEXT, "minutes": 1}, {"area": TEXT, "minutes": 2}]},
        body | {"capacity": {"places": OUT_OF_RANGE_INT}},
        body | {"location": {"label": TEXT, "latitude": OUT_OF_RANGE_FLOAT}},
        body | {TEXT: OUT_OF_RANGE_FLOAT},
    ):
        await d.call("POST", programs, 422, json=invalid)
    await d.call("POST", programs, 400, content=malformed("{"), headers=JSON_TYPE)

    await d.call("GET", programs, 200, params={"limit": 3, "level": "intensive_outpatient"})
    await d.call("GET", programs, 400, params={"cursor": TEXT})
    await d.call("GET", programs, 422, params={"level": TEXT})
    await d.call("GET", programs, 422, params={"limit": OUT_OF_RANGE_INT})
    await d.call("GET", one, 200, path=path)
    await d.call("GET", one, 304, path=path, headers={"If-None-Match": '"1"'})
    await d.call("GET", one, 404, path={"program_id": TEXT})
    await d.call("GET", one, 422, path={"program_id": f"{TEXT}.{OUT_OF_RANGE_INT}"})
    changed = body | {"name": f"{TEXT} renamed"}
    await d.call("PUT", one, 428, path=path, json=changed)
    await d.call("PUT", one, 412, path=path, json=changed, headers={"If-Match": f'"{TEXT}"'})
    await d.call("PUT", one, 422, path=path, json=body | {"payers": [f"{TEXT} {TEXT}"]})
    await d.call("PUT", one, 200, path=path, json=changed, headers={"If-Match": '"1"'})
    retire = f"{one}/retire"
    await d.call("POST", retire, 428, path=path)
    await d.call("POST", retire, 404, path={"program_id": TEXT}, headers={"If-Match": "*"})
    await d.call("POST", retire, 412, path=path, headers={"If-Match": f'W/"{TEXT}"'})
    await d.call("POST", retire, 200, path=path, headers={"If-Match": '"2"'})
    await d.call("PUT", one, 409, path=path, json=changed, headers={"If-Match": '"3"'})


async def exercise_matches_and_referrals(d: Driver) -> None:
    """Matching and referrals, accepted and rejected; the origin's latitude is a sentinel."""
    program = (await d.call("POST", "/v1/programs", 201, json=canary_program())).json()
    screening = await d.call("POST", "/v1/screenings", 201, json={"answers": canary_answers()})
    screening_id = screening.json()["id"]
    matches = "/v1/program-matches"
    origin = {"latitude": IN_RANGE[("medical", "temperature_c")], "longitude": -89.65}
    preferences = {"origin": origin, "languages": ["es"], "payer": f"{SLUG}-payer"}
    await d.call(
        "POST", matches, 200, json={"screening_id": screening_id, "preferences": preferences}
    )
    await d.call("POST", matches, 200, json={"answers": canary_answers(), "limit": 3})
    for invalid in (
        {},
        {"screening_id": TEXT, "answers": canary_answers()},
        {"answers": with_answer("logistics", "travel_minutes_one_way", OUT_OF_RANGE_INT)},
        {"answers": canary_answers(), "limit": OUT_OF_RANGE_INT},
        {"answers": canary_answers(), "preferences": {"origin": {"latitude": OUT_OF_RANGE_FLOAT}}},
        {"answers": canary_answers(), "preferences": {"languages": [TEXT]}},
        {"answers": canary_answers(), TEXT: OUT_OF_RANGE_FLOAT},
    ):
        await d.call("POST", matches, 422, json=invalid)
    await d.call("POST", matches, 404, json={"screening_id": f"{TEXT}-nothing"})
    await d.call("POST", matches, 400, content=malformed("{"), headers=JSON_TYPE)

    referrals = "/v1/screenings/{screening_id}/referrals"
    path = {"screening_id": screening_id}
    referral = {
        "program_id": program["id"],
        "program_version": 1,
        "note": f"{TEXT} note {OUT_OF_RANGE_FLOAT}",
        "referred_by": f"{TEXT}-clinician",
        "preferences": preferences,
    }
    recorded = await d.call("POST", referrals, 201, path=path, json=referral)
    for invalid in (
        referral | {"program_id": f"{TEXT}-unknown"},
        referral | {"program_id": f"{TEXT} {OUT_OF_RANGE_INT}"},
        referral | {"note": f"{TEXT}\x00"},
        referral | {"referred_by": f"{TEXT}\n"},
        referral | {"program_version": OUT_OF_RANGE_INT * 10},
    ):
        await d.call("POST", referrals, 422, path=path, json=invalid)
    await d.call("POST", referrals, 409, path=path, json=referral | {"program_version": 2})
    await d.call("POST", referrals, 404, path={"screening_id": TEXT}, json=referral)
    await d.call("GET", referrals, 200, path=path)
    await d.call("GET", referrals, 404, path={"screening_id": TEXT})
    await d.call("GET", referrals, 422, path={"screening_id": f"{TEXT}.{OUT_OF_RANGE_INT}"})
    one = referrals + "/{referral_id}"
    await d.call("GET", one, 200, path=path | {"referral_id": recorded.json()["id"]})
    await d.call("GET", one, 404, path=path | {"referral_id": TEXT})
    await d.call("GET", one, 404, path={"screening_id": TEXT, "referral_id": TEXT})
    await d.call("GET", one, 422, path=path | {"referral_id": f"{TEXT}.{OUT_OF_RANGE_INT}"})
    await exercise_fhir_programs(d, program["id"], recorded.json()["id"])


async def exercise_fhir_programs(d: Driver, program_id: str, referral_id: str) -> None:
    """The sentinel program read and searched as a HealthcareService, and its referral read as
    a ServiceRequest, accepted and rejected."""
    one, search = FHIR + "/HealthcareService/{program_id}", FHIR + "/HealthcareService"
    await d.call("GET", one, 200, path={"program_id": program_id})
    await d.call("GET", one, 404, path={"program_id": TEXT})
    await d.call("GET", one, 422, path={"program_id": f"{TEXT}:{OUT_OF_RANGE_INT}"})
    await d.call("GET", one, 401, anonymous=True, path={"program_id": program_id})
    found = await d.call("GET", search, 200, params={"name": TEXT, "active": "true", TEXT: TEXT})
    assert [e["resource"]["id"] for e in found.json()["entry"][:1]] == [program_id]
    await d.call("GET", search, 200, params={"service-category": f"{TEXT}|{TEXT}"})
    await d.call("GET", search, 400, params={"active": TEXT})
    await d.call("GET", search, 400, params={"_count": TEXT})
    await d.call("GET", search, 400, params={"_cursor": TEXT})
    await d.call("GET", search, 400, params={"name": f"{TEXT}\x01"})
    await d.call("GET", search, 400, params={TEXT: TEXT}, headers={"Prefer": "handling=strict"})
    await d.call("GET", search, 401, anonymous=True)
    referral = FHIR + "/ServiceRequest/{service_request_id}"
    await d.call("GET", referral, 200, path={"service_request_id": referral_id})


async def exercise_the_rest(d: Driver) -> None:
    audit = "/v1/audit-events"
    await d.call("GET", audit, 200, params={"resource_id": TEXT, "client_id": TEXT, "limit": 5})
    await d.call("GET", audit, 200, params={"outcome": "failure", "status": 422})
    for bad_filter in (
        {"action": TEXT},
        {"resource_type": TEXT},
        {"resource_id": f"{TEXT}\x02"},
        {"outcome": TEXT},
        {"status": OUT_OF_RANGE_INT},
        {"recorded_from": TEXT},
        {"limit": OUT_OF_RANGE_INT},
    ):
        await d.call("GET", audit, 422, params=bad_filter)
    await d.call("GET", audit, 400, params={"cursor": TEXT})

    questionnaire = "/v1/questionnaire"
    await d.call("GET", questionnaire, 200)
    await d.call("GET", questionnaire, 401, anonymous=True)
    for credentials in (
        f"Bearer {TEXT}",
        f"Bearer clk_0123abcd.{TEXT}{'x' * 32}",
        f"Bearer eyJhbGciOiJIUzI1NiJ9.{TEXT}.{OUT_OF_RANGE_INT}",
        f"Basic {TEXT}",
    ):
        await d.call("GET", questionnaire, 401, headers={"Authorization": credentials})

    await d.call("GET", "/healthz", 200, params={"probe": TEXT})
    await d.call("GET", "/healthz", 200, anonymous=True)
    await d.call("GET", "/readyz", 200, params={"probe": TEXT})
    await d.call("GET", "/readyz", 200, anonymous=True)
    await d.call("GET", "/metrics", 200, params={"name[]": TEXT})
    await d.call("GET", "/metrics", 401, anonymous=True)

    # no route at all, and a route without the method
    await d.call("GET", None, 404, url=f"/v1/{TEXT}?q={TEXT}")
    await d.call("POST", None, 404, url=f"/v1/{SLUG}", json={TEXT: OUT_OF_RANGE_INT})
    await d.call("DELETE", "/v1/screenings", 405, params={"q": TEXT})


async def exercise_fhir(d: Driver) -> None:
    """Every FHIR R4 operation, accepted and rejected (errors are OperationOutcomes)."""
    await d.call("GET", FHIR + "/metadata", 200, params={"_format": "json", "probe": TEXT})
    await d.call("GET", FHIR + "/metadata", 406, params={"_format": TEXT})  # not JSON: XML?
    await d.call("GET", FHIR + "/metadata", 406, headers={"Accept": f"application/{SLUG}+xml"})
    await d.call("GET", FHIR + "/metadata", 200, anonymous=True)

    questionnaires, one = FHIR + "/Questionnaire", FHIR + "/Questionnaire/{questionnaire_id}"
    history = one + "/_history/{version_id}"
    canonical = VOCABULARY.questionnaire("iop-level-of-care")
    await d.call("GET", questionnaires, 200)
    found = await d.call("GET", questionnaires, 200, params={"url": canonical, "version": TEXT})
    assert found.json()["total"] == 0
    await d.call("GET", questionnaires, 200, params={"url": f"{canonical}{TEXT}"})
    await d.call("GET", questionnaires, 422, params={"url": f"{TEXT}\x01"})
    await d.call("GET", questionnaires, 422, params={"version": TEXT * 60})
    await d.call("GET", questionnaires, 401, anonymous=True, params={"url": TEXT})
    await d.call("GET", questionnaires, 401, headers={"Authorization": f"Bearer {TEXT}"})
    await d.call("GET", one, 200, path={"questionnaire_id": "iop-level-of-care"})
    await d.call("GET", one, 404, path={"questionnaire_id": TEXT})
    await d.call("GET", one, 404, path={"questionnaire_id": SLUG})
    await d.call("GET", one, 422, path={"questionnaire_id": TEXT * 7})
    shared_1 = {"questionnaire_id": "iop-level-of-care", "version_id": "shared.1"}
    await d.call("GET", history, 200, path=shared_1)
    await d.call("GET", history, 404, path=shared_1 | {"version_id": TEXT})
    await d.call("GET", history, 404, path=shared_1 | {"version_id": f"shared.{OUT_OF_RANGE_INT}"})
    await d.call("GET", history, 404, path={"questionnaire_id": SLUG, "version_id": "shared.1"})
    await d.call("GET", history, 422, path=shared_1 | {"version_id": f"{TEXT}:{TEXT}"})

    # $evaluate: a QuestionnaireResponse, bare or in Parameters, with sentinels all over it
    response = questionnaire_response()
    idempotent = {"Idempotency-Key": f"{TEXT}-fhir-{OUT_OF_RANGE_INT}"}
    evaluated = await d.call(
        "POST", EVALUATE, 200, content=json.dumps(response), headers=FHIR_TYPE | idempotent
    )
    replayed = await d.call(
        "POST", EVALUATE, 200, content=json.dumps(response), headers=FHIR_TYPE | idempotent
    )
    assert replayed.headers.get("idempotent-replayed") == "true"
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": response}],
    }
    await d.call("POST", EVALUATE, 200, json=parameters)
    # a transaction to file: the results (with their ids), then a Provenance (without one)
    entries = [entry["resource"] for entry in evaluated.json()["entry"]]
    by_type = {(r["resourceType"], r.get("id")) for r in entries}
    screening_id: str = evaluated.json()["identifier"]["value"]
    assert ("Observation", screening_id) in by_type
    assert ("ServiceRequest", f"{screening_id}-referral") in by_type

    heart_rate = "medical.heart_rate_bpm"
    rejected: list[tuple[int, Json | list[Any]]] = [
        (422, plus_item(response, {"linkId": TEXT, "answer": [{"valueString": TEXT}]})),
        (422, plus_item(response, {"linkId": f"{TEXT}.{OUT_OF_RANGE_INT}", "item": []})),
        (422, with_item(response, heart_rate, [{"valueString": TEXT}])),
        (422, with_item(response, heart_rate, [{"valueDecimal": OUT_OF_RANGE_FLOAT}])),
        (422, with_item(response, heart_rate, [{"valueInteger": OUT_OF_RANGE_INT}])),
        (
            422,
            with_item(
                response,
                "logistics.travel_minutes_one_way",
                [{"valueInteger": OUT_OF_RANGE_INT}],
            ),
        ),
        (
            422,
            with_item(
                response,
                "respondent.age_group",
                [{"valueCoding": {"system": ANSWER_SPECIAL, "code": TEXT}}],
            ),
        ),
        (
            422,
            with_item(
                response,
                "medical.percent_healthy_body_weight",
                [{"valueDecimal": OUT_OF_RANGE_FLOAT}, {"valueString": TEXT}],
            ),
        ),
        (422, response | {"status": "in-progress"}),
        (422, response | {"questionnaire": f"{canonical}|{TEXT}"}),
        (422, response | {"questionnaire": f"https://{SLUG}.example/Questionnaire/{SLUG}"}),
        (422, response | {"questionnaire": f"{canonical}|shared.{OUT_OF_RANGE_INT}"}),
        (400, response | {"resourceType": "Patient", "id": TEXT}),
        (400, response | {"authored": TEXT}),
        (400, response | {"subject": {"reference": OUT_OF_RANGE_FLOAT}}),
        (400, response | {TEXT: OUT_OF_RANGE_INT}),
        (400, [TEXT, OUT_OF_RANGE_FLOAT]),
        (400, {"resourceType": "Parameters", "parameter": [{"name": TEXT, "resource": response}]}),
    ]
    for status, invalid in rejected:
        await d.call("POST", EVALUATE, status, content=json.dumps(invalid), headers=FHIR_TYPE)
    await d.call("POST", EVALUATE, 400, content=malformed("{"), headers=FHIR_TYPE)
    await d.call("POST", EVALUATE, 415, content=json.dumps(response), headers=TEXT_TYPE)
    await d.call("POST", EVALUATE, 422, json=response, headers={"Idempotency-Key": TEXT * 20})
    await d.call("POST", EVALUATE, 401, anonymous=True, json=response)

    # stored results
    observation = FHIR + "/Observation/{observation_id}"
    referral = FHIR + "/ServiceRequest/{service_request_id}"
    await d.call("GET", observation, 200, path={"observation_id": screening_id})
    await d.call("GET", observation, 200, path={"observation_id": f"{screening_id}-phq9"})
    await d.call("GET", observation, 404, path={"observation_id": TEXT})
    await d.call("GET", observation, 404, path={"observation_id": f"{screening_id}-{TEXT}"})
    await d.call("GET", observation, 404, path={"observation_id": f"{uuid.uuid4()}-phq9"})
    await d.call("GET", observation, 422, path={"observation_id": f"{TEXT}:{OUT_OF_RANGE_INT}"})
    await d.call("GET", referral, 200, path={"service_request_id": f"{screening_id}-referral"})
    await d.call("GET", referral, 404, path={"service_request_id": screening_id})
    await d.call("GET", referral, 404, path={"service_request_id": f"{TEXT}-referral"})
    await d.call("GET", referral, 422, path={"service_request_id": TEXT * 7})

    # terminology
    for kind, read, name, identifier in (
        ("CodeSystem", "/CodeSystem/{code_system_id}", "code_system_id", "level-of-care"),
        ("ValueSet", "/ValueSet/{value_set_id}", "value_set_id", "iop-verdict"),
    ):
        search = f"{FHIR}/{kind}"
        await d.call("GET", search, 200)
        url = f"{VOCABULARY.base}/{kind}/{identifier}"
        assert (await d.call("GET", search, 200, params={"url": url})).json()["total"] == 1
        assert (await d.call("GET", search, 200, params={"url": TEXT})).json()["total"] == 0
        await d.call("GET", search, 422, params={"url": f"{TEXT}\x7f"})
        await d.call("GET", search, 422, params={"url": TEXT * 50})
        await d.call("GET", FHIR + read, 200, path={name: identifier})
        await d.call("GET", FHIR + read, 404, path={name: TEXT})
        await d.call("GET", FHIR + read, 422, path={name: f"{TEXT}:{OUT_OF_RANGE_INT}"})
    await d.call("GET", FHIR + "/ValueSet/{value_set_id}", 404, path={"value_set_id": "urgency"})
    operation = FHIR + "/OperationDefinition/{operation_id}"
    await d.call("GET", operation, 200, path={"operation_id": "QuestionnaireResponse-evaluate"})
    await d.call("GET", operation, 404, path={"operation_id": TEXT})
    await d.call("GET", operation, 422, path={"operation_id": f"{TEXT} {OUT_OF_RANGE_INT}"})
    await d.call("GET", operation, 401, anonymous=True, path={"operation_id": TEXT})


def populate_parameters(*extra: Json, subject: str = f"Patient/{PATIENT_ID}") -> Json:
    """``$populate`` of Patient/CANARY-7Q9X with a chart full of sentinels: the patient's name
    and identifier, a heart rate (an accepted sentinel number), a partly answered response."""
    recently = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    patient = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:{TEXT}-mrn"}],
        "name": [{"family": TEXT, "given": [f"{TEXT}-given"]}],
        "birthDate": "1980-02-29",
        "gender": "female",
    }
    heart_rate = {
        "resourceType": "Observation",
        "id": f"{TEXT}-hr",
        "status": "final",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": recently,
        "valueQuantity": {"value": IN_RANGE[("medical", "heart_rate_bpm")], "unit": "/min"},
        "note": [{"text": f"{TEXT} note {OUT_OF_RANGE_FLOAT}"}],
    }
    someone_else = heart_rate | {"id": f"{TEXT}-other", "subject": {"reference": "Patient/x"}}
    chart = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": heart_rate}, {"resource": someone_else}],
    }
    # citing no Questionnaire: $populate takes only the served canonical base, not the former
    answered = questionnaire_response() | {"status": "in-progress"}
    del answered["questionnaire"]
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueReference": {"reference": subject}},
            populate_context("patient", patient),
            populate_context("chart", chart),
            {"name": "response", "resource": answered},
            *extra,
        ],
    }


def populate_context(name: str, resource: Json) -> Json:
    return {
        "name": "context",
        "part": [{"name": "name", "valueString": name}, {"name": "content", "resource": resource}],
    }


def without_parameter(parameters: Json, name: str) -> Json:
    kept = [p for p in parameters["parameter"] if p["name"] != name]
    return parameters | {"parameter": kept}


async def exercise_fhir_populate(d: Driver) -> None:
    """``Questionnaire/$populate``, at the type and at an instance, accepted and rejected."""
    populate = FHIR + "/Questionnaire/$populate"
    instance = FHIR + "/Questionnaire/{questionnaire_id}/$populate"
    default = {"questionnaire_id": "iop-level-of-care"}
    asked = populate_parameters()
    filled = await d.call("POST", populate, 200, content=json.dumps(asked), headers=FHIR_TYPE)
    assert filled.json()["parameter"][0]["resource"]["subject"]["reference"] == (
        f"Patient/{PATIENT_ID}"
    )
    await d.call("POST", instance, 200, path=default, json=asked)

    canonical = VOCABULARY.questionnaire("iop-level-of-care")
    patient_elsewhere = populate_context("patient", {"resourceType": "Patient", "id": SLUG})
    rejected: list[tuple[int, Json | list[Any]]] = [
        (400, without_parameter(asked, "subject")),
        (400, asked | {"resourceType": "Patient", "id": TEXT}),
        (400, asked | {"parameter": TEXT}),
        (400, [TEXT, OUT_OF_RANGE_FLOAT]),
        (422, populate_parameters(subject=f"Practitioner/{TEXT}")),
        (422, populate_parameters(subject=f"Patient/{TEXT} {OUT_OF_RANGE_INT}")),
        (422, populate_parameters({"name": TEXT, "valueString": TEXT})),
        (
            422,
            populate_parameters({"name": "questionnaire", "valueCanonical": f"{canonical}|{TEXT}"}),
        ),
        (422, populate_parameters({"name": "questionnaire", "valueInteger": OUT_OF_RANGE_INT})),
        (422, populate_parameters(populate_context(TEXT, {"resourceType": TEXT}))),
        (422, populate_parameters(patient_elsewhere)),  # the last patient context counts
        (422, populate_parameters({"name": "response", "resource": {"resourceType": TEXT}})),
    ]
    for status, invalid in rejected:
        await d.call("POST", populate, status, content=json.dumps(invalid), headers=FHIR_TYPE)
    await d.call("POST", populate, 400, content=malformed("{"), headers=FHIR_TYPE)
    await d.call("POST", populate, 415, content=json.dumps(asked), headers=TEXT_TYPE)
    await d.call("POST", populate, 401, anonymous=True, json=asked)
    await d.call("POST", instance, 404, path={"questionnaire_id": TEXT}, json=asked)
    await d.call("POST", instance, 422, path={"questionnaire_id": TEXT * 7}, json=asked)
    mismatched = populate_parameters(
        {"name": "questionnaire", "valueCanonical": VOCABULARY.questionnaire(SLUG)}
    )
    await d.call("POST", instance, 422, path=default, json=mismatched)


async def exercise_fhir_search(d: Driver) -> None:
    """Searching the stored results by the sentinel patient, accepted and rejected."""
    subject = f"Patient/{PATIENT_ID}"
    for kind in ("Observation", "ServiceRequest"):
        search = f"{FHIR}/{kind}"
        found = await d.call("GET", search, 200, params={"subject": subject, TEXT: TEXT})
        assert any(e["resource"]["resourceType"] == kind for e in found.json()["entry"])
        await d.call("GET", search, 200, params={"patient": PATIENT_ID, "code": f"{TEXT}|{TEXT}"})
        for refused in (
            {"code": TEXT},  # no subject
            {"subject": f"{TEXT} {OUT_OF_RANGE_INT}"},
            {"patient": f"Practitioner/{TEXT}"},
            {"subject": subject, "_count": TEXT},
            {"subject": subject, "_sort": TEXT},
            {"subject": subject, "code": f"{TEXT}\x01"},
            {"subject:missing": TEXT},
        ):
            await d.call("GET", search, 400, params=refused)
        strict = {"Prefer": "handling=strict"}
        await d.call("GET", search, 400, params={"subject": subject, TEXT: TEXT}, headers=strict)
        await d.call("GET", search, 401, anonymous=True, params={"subject": subject})
    observations = FHIR + "/Observation"
    dated = {"subject": subject, "date": "ge2020-01-01"}
    await d.call("GET", observations, 200, params=dated)
    await d.call("GET", observations, 400, params={"subject": subject, "date": TEXT})
    await d.call("GET", observations, 400, params={"subject": subject, "date": f"sa{TEXT}"})


async def exercise_fhir_terminology_operations(d: Driver) -> None:
    """``ValueSet/$expand`` (by url and by id), the NamingSystems and the StructureDefinition,
    accepted and rejected."""
    by_url, by_id = FHIR + "/ValueSet/$expand", FHIR + "/ValueSet/{value_set_id}/$expand"
    verdict = {"value_set_id": "iop-verdict"}
    url = f"{VOCABULARY.base}/ValueSet/iop-verdict"
    await d.call("GET", by_url, 200, params={"url": url, "filter": TEXT, "count": 7})
    await d.call("GET", by_id, 200, path=verdict, params={"filter": TEXT, "offset": 3})
    for refused in (
        {"url": f"{url}{TEXT}"},
        {"url": TEXT},
    ):
        await d.call("GET", by_url, 404, params=refused)
    await d.call("GET", by_url, 422, params={"filter": TEXT})  # url is a required parameter
    # FHIR operation parameters: a bad one is a 400 OperationOutcome
    for invalid in (
        {"url": f"{url}|{TEXT}"},
        {"url": f"{TEXT}\x01"},
        {"url": url, "filter": f"{TEXT}\x7f"},
        {"url": url, "offset": OUT_OF_RANGE_INT},
        {"url": url, "count": TEXT},
    ):
        await d.call("GET", by_url, 400, params=invalid)
    await d.call("GET", by_url, 401, anonymous=True, params={"url": url})
    await d.call("GET", by_id, 404, path={"value_set_id": TEXT}, params={"filter": TEXT})
    await d.call("GET", by_id, 422, path={"value_set_id": f"{TEXT}:{OUT_OF_RANGE_INT}"})
    await d.call("GET", by_id, 400, path=verdict, params={"count": OUT_OF_RANGE_INT})

    naming, one = FHIR + "/NamingSystem", FHIR + "/NamingSystem/{naming_system_id}"
    await d.call("GET", naming, 200)
    named = f"{VOCABULARY.base}/NamingSystem/screening-id"
    assert len((await d.call("GET", naming, 200, params={"value": named})).json()["entry"]) == 1
    assert (await d.call("GET", naming, 200, params={"value": TEXT})).json()["entry"] == []
    await d.call("GET", naming, 422, params={"value": f"{TEXT}\x01"})
    await d.call("GET", naming, 422, params={"value": TEXT * 50})
    await d.call("GET", one, 200, path={"naming_system_id": "screening-id"})
    await d.call("GET", one, 404, path={"naming_system_id": TEXT})
    await d.call("GET", one, 422, path={"naming_system_id": f"{TEXT} {OUT_OF_RANGE_INT}"})

    defined = FHIR + "/StructureDefinition"
    definition = defined + "/{structure_definition_id}"
    answer_source = {"structure_definition_id": "answer-source"}
    await d.call("GET", defined, 200)
    found = await d.call("GET", defined, 200, params={"url": VOCABULARY.answer_source})
    assert len(found.json()["entry"]) == 1
    assert (await d.call("GET", defined, 200, params={"url": TEXT})).json()["entry"] == []
    await d.call("GET", defined, 422, params={"url": f"{TEXT}\x01"})
    await d.call("GET", definition, 200, path=answer_source)
    await d.call("GET", definition, 404, path={"structure_definition_id": TEXT})
    await d.call(
        "GET", definition, 422, path={"structure_definition_id": f"{TEXT} {OUT_OF_RANGE_INT}"}
    )


@dataclass
class CdsSigner:
    """The EHR a CDS client stands for: signs each call's JWT with its EC P-384 key, and keeps
    every token it issued (the leak check looks for them too)."""

    base_url: str = BASE_URL  # where the service is reached: the audiences' prefix
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    issued: list[str] = field(default_factory=list)

    def client(self) -> CdsClient:
        jwk = public_jwk(self.key, CDS_KID, alg="ES384", use="sig")
        return CdsClient(name="ehr", issuer=CDS_ISSUER, jwks={"keys": [jwk]}, tenant="default")

    def token(
        self,
        path: str,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        header: Json | None = None,
        **claims: Any,
    ) -> str:
        """A token for a call of ``path`` (``claims`` replace or add to the usual ones)."""
        now = int(time.time())
        payload = {
            "iss": CDS_ISSUER,
            "aud": self.base_url + path,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "sub": f"{TEXT}-subject",
        } | claims
        headers = {"kid": CDS_KID, "typ": "JWT"} | (header or {})
        token = jwt.encode(payload, key or self.key, algorithm="ES384", headers=headers)
        self.issued.append(token)
        return token

    def bearer(self, path: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path, **kwargs)}"}


def prefetched(response: Json | None) -> Json:
    """The prefetch the discovery document asks for: a searchset Bundle with ``response``."""
    entries = [] if response is None else [{"resource": response}]
    return {
        "questionnaireResponse": {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    }


def hook_call(hook: str = "patient-view", **fields: Any) -> Json:
    """A call about Patient/CANARY-7Q9X with its latest QuestionnaireResponse prefetched."""
    response = questionnaire_response(
        identifier={"system": "urn:ietf:rfc:3986", "value": f"urn:{TEXT}-cds-{uuid.uuid4()}"}
    )
    return {
        "hook": hook,
        "hookInstance": f"{TEXT}-{uuid.uuid4()}",
        "context": {
            "userId": f"Practitioner/{TEXT}",
            "patientId": PATIENT_ID,
            "encounterId": f"{TEXT}-{OUT_OF_RANGE_INT}",
        },
        "prefetch": prefetched(response),
    } | fields


async def exercise_cds_hooks(d: Driver, signer: CdsSigner) -> None:
    """Every CDS Hooks operation, accepted and rejected, each call with a fresh signed JWT."""
    services = "/cds-services"
    call = services + "/{service_id}"
    feedback = call + "/feedback"
    screening = "carelevel-iop-screening"
    screening_path = f"{services}/{screening}"
    feedback_path = f"{screening_path}/feedback"
    at = {"service_id": screening}

    await d.call("GET", services, 200, headers=signer.bearer(services))
    reused = f"{TEXT}-{uuid.uuid4()}"
    await d.call("GET", services, 200, headers=signer.bearer(services, jti=reused))
    now = int(time.time())
    for refused in (
        signer.bearer(services, jti=reused),  # a replay
        signer.bearer(services, jti=f"{TEXT}\x01"),
        signer.bearer(services, iss=f"https://{SLUG}.example"),
        signer.bearer(services, aud=f"{BASE_URL}/{TEXT}"),
        signer.bearer(services, exp=now - 3600, iat=now - 7200),
        signer.bearer(services, iat=now + OUT_OF_RANGE_INT),
        signer.bearer(services, key=ec.generate_private_key(ec.SECP384R1())),
        signer.bearer(services, header={"kid": TEXT}),
        signer.bearer(services, header={"typ": TEXT}),
        {"Authorization": f"Bearer {TEXT}.{OUT_OF_RANGE_INT}.{TEXT}"},
        {"Authorization": f"Bearer eyJhbGciOiJFUzM4NCJ9.{TEXT}.{OUT_OF_RANGE_FLOAT}"},
        {},  # the API key the client sends by default: not accepted under /cds-services
    ):
        await d.call("GET", services, 401, headers=refused)
    await d.call("GET", services, 401, anonymous=True)

    # service calls
    authorized = hook_call(
        fhirServer="https://ehr.example/fhir",
        fhirAuthorization={
            "access_token": f"{TEXT}-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/QuestionnaireResponse.read",
            "subject": f"{TEXT}-client",
            "patient": PATIENT_ID,
        },
    )
    shown = await d.call(
        "POST", call, 200, path=at, headers=signer.bearer(screening_path), json=authorized
    )
    card: str = shown.json()["cards"][0]["uuid"]
    await d.call(
        "POST",
        call,
        200,
        path=at,
        headers=signer.bearer(screening_path),
        json=hook_call(prefetch=prefetched(None)),
    )
    referral_check = "carelevel-iop-referral-check"
    draft = {
        "resourceType": "ServiceRequest",
        "id": TEXT,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.285", "code": "H0035"}]},
    }
    order_select = hook_call(hook="order-select")
    order_select["context"] |= {
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": draft}],
        },
        "selections": [f"ServiceRequest/{TEXT}"],
    }
    await d.call(
        "POST",
        call,
        200,
        path={"service_id": referral_check},
        headers=signer.bearer(f"{services}/{referral_check}"),
        json=order_select,
    )

    unknown = {"linkId": TEXT, "answer": [{"valueInteger": OUT_OF_RANGE_INT}]}
    unknown_answer = hook_call(prefetch=prefetched(plus_item(questionnaire_response(), unknown)))
    bad_context = hook_call()
    bad_context["context"]["patientId"] = f"{TEXT} {OUT_OF_RANGE_INT}"
    bad_user = hook_call()
    bad_user["context"]["userId"] = TEXT
    someone_else = hook_call()
    someone_else["context"]["patientId"] = f"{TEXT}-other"
    rejected: list[tuple[int, Json | list[Any]]] = [
        (412, {key: value for key, value in hook_call().items() if key != "prefetch"}),
        (412, hook_call(prefetch={TEXT: OUT_OF_RANGE_INT})),
        (400, hook_call(hook="order-select")),
        (400, hook_call(hook=TEXT)),
        (400, someone_else),
        (400, hook_call(prefetch={"questionnaireResponse": TEXT})),
        (422, unknown_answer),
        (422, bad_context),
        (422, bad_user),
        (422, hook_call(hookInstance=f"{TEXT}\x01")),
        (422, hook_call(context=[TEXT, OUT_OF_RANGE_FLOAT])),
        (
            422,
            hook_call(
                fhirAuthorization={"access_token": f"{TEXT}-access-token", "token_type": TEXT}
            ),
        ),
        (422, [TEXT, OUT_OF_RANGE_INT]),
    ]
    for status, invalid in rejected:
        await d.call(
            "POST", call, status, path=at, headers=signer.bearer(screening_path), json=invalid
        )
    await d.call(
        "POST",
        call,
        400,
        path=at,
        headers=signer.bearer(screening_path) | JSON_TYPE,
        content=malformed("{"),
    )
    await d.call(
        "POST",
        call,
        404,
        path={"service_id": SLUG},
        headers=signer.bearer(f"{services}/{SLUG}"),
        json=hook_call(),
    )
    await d.call(
        "POST",
        call,
        422,
        path={"service_id": TEXT},
        headers=signer.bearer(f"{services}/{TEXT}"),
        json=hook_call(),
    )
    await d.call("POST", call, 401, path=at, headers=signer.bearer(services), json=hook_call())
    await d.call("POST", call, 401, path=at, json=hook_call())

    # feedback on the card shown
    reason = {
        "system": "https://carelevel.dev/fhir/CodeSystem/variance-reason",
        "code": "other",
        "display": "Other",
    }
    overridden = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"reason": reason, "userComment": f"{TEXT} comment {OUT_OF_RANGE_FLOAT}"},
        "outcomeTimestamp": "2026-12-01T10:00:00Z",
    }
    recorded = await d.call(
        "POST",
        feedback,
        200,
        path=at,
        headers=signer.bearer(feedback_path),
        json={"feedback": [overridden]},
    )
    assert recorded.json() == {"recorded": 1}
    again = await d.call(
        "POST",
        feedback,
        200,
        path=at,
        headers=signer.bearer(screening_path),
        json={"feedback": [overridden]},
    )
    assert again.json() == {"recorded": 0}
    for status, invalid in (
        (404, {"feedback": [overridden | {"card": TEXT}]}),
        (404, {"feedback": [overridden | {"card": str(uuid.uuid4())}]}),
        (422, {"feedback": [overridden | {"outcome": TEXT}]}),
        (422, {"feedback": [overridden | {"outcome": "accepted"}]}),
        (422, {"feedback": [overridden | {"outcomeTimestamp": TEXT}]}),
        (422, {"feedback": [overridden | {"outcomeTimestamp": OUT_OF_RANGE_INT}]}),
        (422, {"feedback": [overridden | {"overrideReason": {"userComment": f"{TEXT}\x00"}}]}),
        (422, {"feedback": []}),
        (422, {TEXT: OUT_OF_RANGE_FLOAT}),
    ):
        await d.call(
            "POST", feedback, status, path=at, headers=signer.bearer(feedback_path), json=invalid
        )
    await d.call(
        "POST",
        feedback,
        400,
        path=at,
        headers=signer.bearer(feedback_path) | JSON_TYPE,
        content=malformed("{"),
    )
    await d.call(
        "POST",
        feedback,
        404,
        path={"service_id": SLUG},
        headers=signer.bearer(f"{services}/{SLUG}/feedback"),
        json={"feedback": [overridden]},
    )
    await d.call(
        "POST",
        feedback,
        401,
        path=at,
        headers=signer.bearer(services),
        json={"feedback": [overridden]},
    )
    await d.call("POST", feedback, 401, path=at, json={"feedback": [overridden]})


async def exercise_a_server_error(app: FastAPI, d: Driver) -> None:
    """An unexpected exception whose message carries sentinels (the service raising, as a bug
    would): a 500 whose log names the exception's type only."""

    async def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError(f"{TEXT} {OUT_OF_RANGE_FLOAT} {args!r}")

    service = app.state.screening_service
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "evaluate_only", broken)
        body = {"answers": canary_answers(), "external_reference": TEXT}
        await d.call("POST", "/v1/screenings/evaluate", 500, json=body)


@dataclass(frozen=True)
class Drive:
    operations: frozenset[tuple[str, str]]
    templates: frozenset[str]
    exchanges: list[Exchange]
    unexpected: list[tuple[str, str, int, int, str]]
    records: list[logging.LogRecord]
    secrets: tuple[str, ...]


@pytest.fixture(scope="module")
async def drive(schema: AsyncEngine, settings: Settings) -> Drive:
    capture = Capture()
    with everything_at_debug(capture):
        await empty_tables(schema)
        signer = CdsSigner()
        trusting = {"cds_clients": [signer.client()], "public_url": signer.base_url}
        async with running(settings.model_copy(update=trusting)) as app:
            admin_key = await new_key(app)
            async with (
                http_client(app, admin_key) as http,
                http_client(app, None, "anonymous") as anonymous,
            ):
                driver = Driver(http, anonymous)
                await exercise_screenings(driver)
                await exercise_rule_sets(driver)
                client_key = await exercise_clients(driver)
                await exercise_programs(driver)
                await exercise_matches_and_referrals(driver)
                await exercise_the_rest(driver)
                await exercise_fhir(driver)
                await exercise_fhir_populate(driver)
                await exercise_fhir_search(driver)
                await exercise_fhir_terminology_operations(driver)
                await exercise_cds_hooks(driver, signer)
                await exercise_a_server_error(app, driver)
        paths: dict[str, Json] = app.openapi()["paths"]
    operations = frozenset(
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in HTTP_METHODS
    )
    return Drive(
        operations=operations,
        templates=frozenset(paths),
        exchanges=driver.exchanges,
        unexpected=driver.unexpected,
        records=list(capture.records),
        secrets=(admin_key, client_key, *signer.issued),
    )


# --- in process -------------------------------------------------------------------------------


def test_every_request_gets_the_status_it_expects(drive: Drive) -> None:
    assert drive.unexpected == [], "(method, target, expected, got, body)"


def test_every_operation_is_exercised_accepted_and_rejected(drive: Drive) -> None:
    def statuses(method: str, path: str) -> set[int]:
        return {e.status for e in drive.exchanges if (e.method, e.route) == (method, path)}

    never_accepted = sorted(
        op for op in drive.operations if not any(200 <= s < 300 for s in statuses(*op))
    )
    never_rejected = sorted(
        op
        for op in drive.operations - NOTHING_TO_REJECT
        if not any(400 <= s < 500 for s in statuses(*op))
    )
    assert never_accepted == [], "operations the canary never sends a valid request to"
    assert never_rejected == [], "operations the canary never sends an invalid request to"
    assert any(e.status == 500 for e in drive.exchanges)


def test_no_sentinel_reaches_any_log_record(drive: Drive) -> None:
    service_records = [r for r in drive.records if not r.name.startswith(CLIENT_SIDE_LOGGERS)]
    # the capture did capture, at DEBUG, the service's loggers and the database layer's
    assert len(service_records) > len(drive.exchanges)
    assert any(r.levelno == logging.DEBUG for r in service_records)
    assert any(r.name.startswith("sqlalchemy") for r in service_records)
    leaked: dict[str, list[str]] = {}
    for record in service_records:
        found = leaks(record_text(record), drive.secrets)
        if found:
            leaked.setdefault(record.name, []).append(f"{found}: {record_text(record)[:300]!r}")
    summary = {name: (len(lines), lines[:3]) for name, lines in leaked.items()}
    assert leaked == {}, f"sentinels in the logs, by logger: {summary}"


def test_the_access_log_has_one_line_per_request_with_the_route_template(drive: Drive) -> None:
    access = [r for r in drive.records if r.name == "carelevel.access"]
    lines = [record.getMessage() for record in access]
    parsed = [ACCESS_LINE.fullmatch(line) for line in lines]
    assert [line for line, match in zip(lines, parsed, strict=True) if match is None] == []
    by_request_id = Counter(match["request_id"] for match in parsed if match)

    assert len(access) == len(drive.exchanges)
    assert [rid for rid, count in by_request_id.items() if count != 1] == []
    logged = {
        match["request_id"]: (match["method"], match["route"], int(match["status"]))
        for match in parsed
        if match
    }
    mismatched = [
        (e, logged.get(e.request_id))
        for e in drive.exchanges
        if logged.get(e.request_id) != (e.method, e.route, e.status)
    ]
    assert mismatched == []
    for line, match in zip(lines, parsed, strict=True):
        assert match is not None
        assert "?" not in line
        assert match["route"] == "-" or match["route"] in drive.templates, line
    assert all(r.levelno == logging.INFO for r in access)
