"""Every kind of FHIR resource carelevel serves, collected from a started application's live
endpoints for the validators (validate.mjs).

What to collect is read from the CapabilityStatement wherever it can be: every resource type it
declares is searched (search-type) and read (read, vread), and every operation it declares is
called through a driver of its own. A type or an operation declared but not collected is a
*gap*: the run fails on it, so nothing the server claims goes unvalidated. The rest comes from
what the endpoints return: the ``$evaluate`` Bundles' entries read again at their ``fullUrl``,
OperationOutcomes of refused requests, and the FHIR resources of CDS Hooks cards. The program
directory is filled through the REST API first (a program in use, a retired one, and a referral
to the first), so that its HealthcareServices and the referral's ServiceRequest are among what
the searches find, and the cards suggest the program.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.fhir.examples import example_response, response_for
from app.fhir.terminology import Vocabulary
from app.programs.examples import EVENING_IOP
from tests.support.examples import example

Json = dict[str, Any]
FHIR = "/fhir/r4"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
EXAMPLES = (
    "adult-iop-suitable",
    "adult-iop-with-barriers",
    "adolescent-step-down",
    "emergency-suicide-risk",
    "insufficient-information",
)
PATIENT = "1288992"
# The screening referred to the directory's program: one whose subject the searches find.
REFERRED = "adult-iop-suitable"


@dataclass
class Harvest:
    """The collected resources (file name → resource) and the gaps found on the way."""

    resources: dict[str, Json] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)

    def add(self, label: str, resource: Any) -> None:
        if not isinstance(resource, dict) or "resourceType" not in resource:
            self.gaps.append(f"{label}: not a FHIR resource")
            return
        name = re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-")
        self.resources[f"{len(self.resources):03d}-{name}.json"] = resource

    def kinds(self) -> set[str]:
        """Every resource type collected, those inside Bundles and Parameters too."""
        return {str(r["resourceType"]) for r in self.resources.values()} | {
            str(inner["resourceType"]) for r in self.resources.values() for inner in _inner(r)
        }

    def write(self, directory: Path) -> None:
        for name, resource in self.resources.items():
            (directory / name).write_text(json.dumps(resource, indent=1))


def _inner(resource: Json) -> list[Json]:
    entries = [e.get("resource") for e in resource.get("entry") or []]
    parts = [p.get("resource") for p in resource.get("parameter") or []]
    return [r for r in entries + parts if isinstance(r, dict) and "resourceType" in r]


async def fetched(harvest: Harvest, label: str, request: Awaitable[httpx.Response]) -> Json | None:
    """The resource a call that should succeed returned, collected; None (a gap) otherwise."""
    response = await request
    if response.status_code not in (200, 201):
        harvest.gaps.append(f"{label}: answered {response.status_code}: {response.text[:300]}")
        return None
    body: Json = response.json()
    harvest.add(label, body)
    return body


# --- what the CapabilityStatement declares ------------------------------------------------------


def declared_types(capability: Json) -> dict[str, Json]:
    """Each resource type of the server's rest entries, with its declaration."""
    return {
        str(resource["type"]): resource
        for rest in capability.get("rest") or []
        for resource in rest.get("resource") or []
    }


def declared_operations(capability: Json) -> list[tuple[str | None, Json]]:
    """Each declared operation: (its resource type, or None at system level; the declaration)."""
    found: list[tuple[str | None, Json]] = []
    for rest in capability.get("rest") or []:
        found += [(None, operation) for operation in rest.get("operation") or []]
        for resource in rest.get("resource") or []:
            found += [
                (resource["type"], operation) for operation in resource.get("operation") or []
            ]
    return found


def interactions(declaration: Json) -> set[str]:
    return {str(i["code"]) for i in declaration.get("interaction") or []}


def search_parameters(declaration: Json) -> tuple[dict[str, str], dict[str, str] | None]:
    """Parameters of a search for the type that matches what the harvest stored (the patient's
    results, or everything), and of one that matches nothing (None: the type has none)."""
    names = {str(p["name"]) for p in declaration.get("searchParam") or []}
    for name in ("patient", "subject"):
        if name in names:
            return {name: f"Patient/{PATIENT}"}, {name: "Patient/no-such-patient"}
    return {}, ({"url": f"urn:uuid:{uuid.uuid4()}"} if "url" in names else None)


# --- collecting -------------------------------------------------------------------------------


@dataclass
class Harvester:
    fhir: httpx.AsyncClient  # an authenticated API client with every scope
    anonymous: httpx.AsyncClient
    vocabulary: Vocabulary
    harvest: Harvest = field(default_factory=Harvest)
    questionnaire_ids: list[str] = field(default_factory=list)
    value_sets: list[Json] = field(default_factory=list)
    referred_screening: str | None = None  # a screening of PATIENT evaluated from REFERRED

    async def get(self, label: str, path: str, **params: str) -> Json | None:
        return await fetched(self.harvest, label, self.fhir.get(path, params=params))

    async def post(self, label: str, path: str, body: Json) -> Json | None:
        request = self.fhir.post(path, content=json.dumps(body), headers=FHIR_JSON)
        return await fetched(self.harvest, label, request)

    async def search_and_read(self, kind: str, declaration: Json) -> None:
        """The type's searchset Bundle, and each match read (and vread) again."""
        done = interactions(declaration)
        if "search-type" not in done:
            return
        matching, matching_nothing = search_parameters(declaration)
        bundle = await self.get(f"{kind}-search", f"{FHIR}/{kind}", **matching)
        for entry in (bundle or {}).get("entry") or []:
            resource = entry["resource"]
            if kind == "Questionnaire":
                self.questionnaire_ids.append(resource["id"])
                url = resource["url"]
                await self.get(f"{kind}-search-by-url", f"{FHIR}/{kind}", url=url)
            if kind == "ValueSet":
                self.value_sets.append(resource)
            if "read" in done:
                await self.get(f"{kind}-read", f"{FHIR}/{kind}/{resource['id']}")
            version = (resource.get("meta") or {}).get("versionId")
            if "vread" in done and version:
                path = f"{FHIR}/{kind}/{resource['id']}/_history/{version}"
                await self.get(f"{kind}-vread", path)
        if matching_nothing is not None:
            await self.get(f"{kind}-search-empty", f"{FHIR}/{kind}", **matching_nothing)

    async def read_entries(self, label: str, bundle: Json | None) -> None:
        """Each entry of a result Bundle, read again at its fullUrl."""
        for entry in (bundle or {}).get("entry") or []:
            full_url = entry.get("fullUrl") or ""
            path = urlsplit(full_url).path
            if path.startswith(f"{FHIR}/"):
                await self.get(f"{label}-{entry['resource']['resourceType']}-read", path)

    async def evaluate(self) -> None:
        """``QuestionnaireResponse/$evaluate`` on every example, with and without a subject,
        and once as a Parameters resource."""
        path = f"{FHIR}/QuestionnaireResponse/$evaluate"
        for name in EXAMPLES:
            for subject in (f"Patient/{PATIENT}", None):
                response = response_for(self.vocabulary, example(name), subject=subject)
                label = f"evaluate-{name}-{'subject' if subject else 'anonymous'}"
                bundle = await self.post(label, path, response)
                if bundle is not None and name == REFERRED and subject is not None:
                    self.referred_screening = bundle["identifier"]["value"]
                await self.read_entries(label, bundle)
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "questionnaire-response", "resource": example_response(self.vocabulary)}
            ],
        }
        await self.post("evaluate-parameters", path, parameters)

    async def rest(self, label: str, method: str, path: str, **arguments: Any) -> Json | None:
        """A REST call (not FHIR) that should succeed, its JSON body; None (a gap) otherwise."""
        response = await self.fhir.request(method, path, **arguments)
        if response.status_code not in (200, 201):
            self.harvest.gaps.append(f"{label}: answered {response.status_code}")
            return None
        body: Json = response.json()
        return body

    async def directory(self) -> None:
        """The program directory through the REST API: the documented program (a place, a
        timetable, languages, capacity, contact), a retired one (an inactive
        HealthcareService), and a referral of the REFERRED screening to the first (an
        ``intent=order`` ServiceRequest found by the patient's ServiceRequest search)."""
        program = await self.rest("program", "POST", "/v1/programs", json=EVENING_IOP)
        bare = {
            "name": "Day program",
            "level": "partial_hospitalization",
            "populations": ["adolescent"],
            "specialties": ["eating_disorder"],
            "modality": "in_person",
            "languages": ["en"],
        }
        retired = await self.rest("retired-program", "POST", "/v1/programs", json=bare)
        if retired is not None:
            path = f"/v1/programs/{retired['id']}"
            await self.rest("retire", "POST", f"{path}/retire", headers={"If-Match": '"1"'})
        if program is None or self.referred_screening is None:
            self.harvest.gaps.append("no referral recorded: no program or no screening to refer")
            return
        referral = {
            "program_id": program["id"],
            "referred_by": "dr-lee",
            "note": "Prefers evening sessions.",
        }
        path = f"/v1/screenings/{self.referred_screening}/referrals"
        recorded = await self.rest("referral", "POST", path, json=referral)
        if recorded is not None:
            await self.get(
                "referral-ServiceRequest-read", f"{FHIR}/ServiceRequest/{recorded['id']}"
            )

    def populate_parameters(self) -> Json:
        patient = {
            "resourceType": "Patient",
            "id": PATIENT,
            "birthDate": "1990-04-02",
            "gender": "female",
        }
        phq9 = {
            "resourceType": "Observation",
            "id": "phq9-total",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "effectiveDateTime": "2026-11-20T10:00:00Z",
            "valueInteger": 14,
        }
        chart = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": patient}, {"resource": phq9}],
        }
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subject", "valueReference": {"reference": f"Patient/{PATIENT}"}},
                _context("patient", patient),
                _context("chart", chart),
            ],
        }

    async def populate(self) -> None:
        """``Questionnaire/$populate``, at type level and on each Questionnaire; once with a
        partly answered response to keep, and once refused (no subject)."""
        parameters = self.populate_parameters()
        await self.post("populate", f"{FHIR}/Questionnaire/$populate", parameters)
        for identifier in self.questionnaire_ids:
            path = f"{FHIR}/Questionnaire/{identifier}/$populate"
            await self.post(f"populate-{identifier}", path, parameters)
        answered = {"respondent": example("adult-iop-suitable")["respondent"]}
        partial = response_for(self.vocabulary, answered, status="in-progress")
        with_response = parameters["parameter"] + [{"name": "response", "resource": partial}]
        await self.post(
            "populate-keeping-answers",
            f"{FHIR}/Questionnaire/$populate",
            parameters | {"parameter": with_response},
        )
        no_subject = [p for p in parameters["parameter"] if p["name"] != "subject"]
        request = self.fhir.post(
            f"{FHIR}/Questionnaire/$populate",
            content=json.dumps(parameters | {"parameter": no_subject}),
            headers=FHIR_JSON,
        )
        await refused(self.harvest, "outcome-populate-without-subject", request)

    async def expand(self) -> None:
        """``ValueSet/$expand`` of every value set, by id and by canonical URL."""
        for value_set in self.value_sets:
            await self.get(
                f"expand-{value_set['id']}", f"{FHIR}/ValueSet/{value_set['id']}/$expand"
            )
            await self.get("expand-by-url", f"{FHIR}/ValueSet/$expand", url=value_set["url"])

    async def operation_definitions(self, operations: list[tuple[str | None, Json]]) -> None:
        """The definitions of carelevel's own operations (not those of HL7's it implements)."""
        for _, operation in operations:
            definition = str(operation.get("definition", ""))
            if not definition.startswith(f"{self.vocabulary.base}/OperationDefinition/"):
                continue
            identifier = definition.rsplit("/", 1)[-1]
            await self.get(
                f"OperationDefinition-{identifier}", f"{FHIR}/OperationDefinition/{identifier}"
            )


def _context(name: str, content: Json) -> Json:
    return {
        "name": "context",
        "part": [{"name": "name", "valueString": name}, {"name": "content", "resource": content}],
    }


Driver = Callable[[Harvester], Awaitable[None]]
# How each operation is called; an operation the CapabilityStatement declares without a driver
# here is a gap.
DRIVERS: dict[str, Driver] = {
    "evaluate": Harvester.evaluate,
    "populate": Harvester.populate,
    "expand": Harvester.expand,
}


def undriven(operations: list[tuple[str | None, Json]]) -> list[str]:
    """The declared operations no driver calls, as gaps."""
    return [
        f"the CapabilityStatement declares {kind or 'system'} ${operation['name']}, which is not "
        "validated: give it a driver in tests/fhir_validation/harvest.py"
        for kind, operation in operations
        if operation["name"] not in DRIVERS
    ]


async def refusals(harvester: Harvester) -> None:
    """OperationOutcomes of requests the server refuses."""
    http, anonymous = harvester.fhir, harvester.anonymous
    evaluate = f"{FHIR}/QuestionnaireResponse/$evaluate"
    unknown_link = response_for(harvester.vocabulary, example("adult-iop-suitable"))
    unknown_link["item"].append({"linkId": "no.such.item", "answer": [{"valueBoolean": True}]})
    bad_date = response_for(harvester.vocabulary, example("adult-iop-suitable"))
    bad_date["authored"] = "yesterday"
    plain_text = {"Content-Type": "text/plain"}
    cases: list[tuple[str, Awaitable[httpx.Response]]] = [
        ("unknown-questionnaire", http.get(f"{FHIR}/Questionnaire/no-such-questionnaire")),
        ("unknown-observation", http.get(f"{FHIR}/Observation/{uuid.uuid4()}")),
        ("anonymous", anonymous.get(f"{FHIR}/Questionnaire")),
        ("not-json", http.post(evaluate, content=b"{", headers=FHIR_JSON)),
        ("bad-datetime", http.post(evaluate, json=bad_date, headers=FHIR_JSON)),
        ("unknown-linkid", http.post(evaluate, json=unknown_link, headers=FHIR_JSON)),
        ("text-plain", http.post(evaluate, content=b"x", headers=plain_text)),
    ]
    for label, request in cases:
        await refused(harvester.harvest, f"outcome-{label}", request)


async def refused(harvest: Harvest, label: str, request: Awaitable[httpx.Response]) -> None:
    """The OperationOutcome of a request the server should refuse (any 4xx: the API
    specifications check each status), collected; a gap otherwise."""
    response = await request
    try:
        body = response.json()
    except ValueError:  # not JSON at all
        body = None
    if not 400 <= response.status_code < 500 or not isinstance(body, dict):
        harvest.gaps.append(f"{label}: answered {response.status_code}: {response.text[:300]}")
    elif body.get("resourceType") != "OperationOutcome":
        harvest.gaps.append(f"{label}: answered {response.status_code} without an OperationOutcome")
    else:
        harvest.add(label, body)


async def cds_resources(
    harvest: Harvest, ehr: httpx.AsyncClient, vocabulary: Vocabulary, sign: Callable[[str], str]
) -> None:
    """The FHIR resources of the cards of each CDS service (the suggestions' actions), for a
    patient whose screening recommends a level; ``sign`` gives the JWT for a path."""
    response = response_for(vocabulary, example("adult-iop-suitable"), subject=f"Patient/{PATIENT}")
    draft = {
        "resourceType": "ServiceRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.285", "code": "H0035"}]},
    }
    calls = {
        "carelevel-iop-screening": ("patient-view", {}),
        "carelevel-iop-referral-check": (
            "order-select",
            {
                "selections": ["ServiceRequest/draft-1"],
                "draftOrders": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": draft}],
                },
            },
        ),
    }
    suggested = 0
    for service, (hook, context) in calls.items():
        path = f"/cds-services/{service}"
        body = {
            "hook": hook,
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/dr-lee", "patientId": PATIENT} | context,
            "prefetch": {"questionnaireResponse": response},
        }
        answer = await ehr.post(path, json=body, headers={"Authorization": f"Bearer {sign(path)}"})
        if answer.status_code != 200:
            harvest.gaps.append(
                f"CDS {service}: answered {answer.status_code}: {answer.text[:300]}"
            )
            continue
        actions = [
            action
            for card in answer.json()["cards"]
            for suggestion in card.get("suggestions") or []
            for action in suggestion.get("actions") or []
            if action.get("resource")
        ]
        suggested += len(actions)
        for action in actions:
            harvest.add(f"cds-{service}-{action['type']}", action["resource"])
    if not suggested:
        harvest.gaps.append("CDS Hooks: no card suggested a FHIR resource")


async def harvest(
    fhir: httpx.AsyncClient, anonymous: httpx.AsyncClient, vocabulary: Vocabulary
) -> Harvest:
    """Everything the FHIR endpoint serves, driven by its CapabilityStatement."""
    harvester = Harvester(fhir, anonymous, vocabulary)
    metadata = anonymous.get(f"{FHIR}/metadata")  # public: read before authenticating
    capability = await fetched(harvester.harvest, "metadata", metadata)
    if capability is None:
        return harvester.harvest
    types = declared_types(capability)
    operations = declared_operations(capability)
    harvester.harvest.gaps += undriven(operations)
    declared = {operation["name"] for _, operation in operations}
    if "evaluate" in declared:  # first: it stores the results the searches then find
        await harvester.evaluate()
    await harvester.directory()
    for kind, declaration in types.items():
        await harvester.search_and_read(kind, declaration)
    for name, driver in DRIVERS.items():
        if name in declared and name != "evaluate":
            await driver(harvester)
    await harvester.operation_definitions(operations)
    await refusals(harvester)
    missing = set(types) - harvester.harvest.kinds()
    harvester.harvest.gaps += [f"no {kind} collected, though declared" for kind in sorted(missing)]
    return harvester.harvest
