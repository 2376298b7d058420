"""Every FHIR resource carelevel serves is valid FHIR R4, by two independent validators.

A started application (a fresh SQLite file) is harvested through its public endpoints
(harvest.py): what the CapabilityStatement declares, the ``$evaluate`` results read again, the
OperationOutcomes of refused requests and the CDS Hooks cards' resources. validate.mjs checks
each with HL7's FHIR R4 JSON Schema (ajv), Medplum's StructureDefinition validator and every
R4 invariant (fhirpath.js). Each validator is shown to catch what it is there to catch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from app.kernel.issuers import CdsClient
from app.kernel.settings import Settings
from tests.fhir_validation.harvest import (
    Harvest,
    cds_resources,
    declared_operations,
    harvest,
    undriven,
)
from tests.support.apps import http_client, new_key, running
from tests.support.tokens import EC_384_KEY, public_jwk

HERE = Path(__file__).resolve().parent
# The resources validated, kept for reading after the run (reports/ is not versioned).
REPORTS = HERE.parents[1] / "reports" / "fhir-validation"
BASE_URL = "http://carelevel.test"  # what http_client calls: the audience of the EHR's tokens
EHR = CdsClient(
    name="ehr",
    issuer="https://ehr.example.test",
    jwks={"keys": [public_jwk(EC_384_KEY, "ehr-1", use="sig")]},
    tenant="default",
)
# Every kind the service is known to serve today; the harvest adds what the CapabilityStatement
# declares besides.
EXPECTED_KINDS = {
    "Bundle",
    "CapabilityStatement",
    "CodeSystem",
    "Observation",
    "OperationDefinition",
    "OperationOutcome",
    "Questionnaire",
    "ServiceRequest",
    "StructureDefinition",
    "ValueSet",
}
NODE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Report:
    files: list[str]
    validators: list[str]
    errors: list[dict[str, str]]

    def by(self, validator: str) -> list[dict[str, str]]:
        return [error for error in self.errors if error["validator"] == validator]

    def readable(self) -> str:
        return "\n".join(
            f"{e['validator']}: {e['file']}: {e['resource']}: {e['path']}: {e['message']}"
            for e in self.errors
        )


def validated(directory: Path) -> Report:
    """validate.mjs's report on every resource in ``directory``."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules").is_dir():
        pytest.fail(
            "the validators need node and `npm ci` in tests/fhir_validation (make fhir-validate)"
        )
    run = subprocess.run(
        [node, str(HERE / "validate.mjs"), str(directory), "--json"],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr
    report = Report(**json.loads(run.stdout))
    assert (run.returncode == 1) == bool(report.errors)
    return report


def signed(path: str) -> str:
    """The JWT the EHR signs for a call of ``path`` (CDS Hooks 2.0)."""
    now = int(time.time())
    claims = {
        "iss": EHR.issuer,
        "aud": BASE_URL + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, EC_384_KEY, "ES384", headers={"kid": "ehr-1", "typ": "JWT"})


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> Harvest:
    """What a freshly started carelevel serves over FHIR and CDS Hooks."""
    work = tmp_path_factory.mktemp("served")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{work / 'carelevel.db'}",
        environment="test",
        public_url=BASE_URL,
        cds_clients=[EHR],
    )
    async with running(settings) as app:
        vocabulary = app.state.fhir.vocabulary
        async with (
            http_client(app, await new_key(app)) as fhir,
            http_client(app, None) as anonymous,
        ):
            collected = await harvest(fhir, anonymous, vocabulary)
            await cds_resources(collected, anonymous, vocabulary, signed)
    return collected


def test_every_resource_carelevel_serves_is_valid_fhir_r4(served: Harvest) -> None:
    assert served.gaps == [], "\n".join(served.gaps)
    assert served.kinds() >= EXPECTED_KINDS
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    served.write(REPORTS)
    report = validated(REPORTS)
    assert len(report.files) == len(served.resources)
    assert report.errors == [], report.readable()


def test_an_operation_the_capability_statement_declares_without_a_driver_is_a_gap() -> None:
    capability: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "mode": "server",
                "operation": [{"name": "export", "definition": "http://x/OperationDefinition/e"}],
                "resource": [
                    {
                        "type": "QuestionnaireResponse",
                        "operation": [{"name": "evaluate", "definition": "http://x/a"}],
                    }
                ],
            }
        ],
    }
    assert undriven(declared_operations(capability)) == [
        "the CapabilityStatement declares system $export, which is not validated: give it a "
        "driver in tests/fhir_validation/harvest.py"
    ]


OBSERVATION = {
    "resourceType": "Observation",
    "id": "broken",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
    "valueInteger": 14,
}

# A broken resource, and the validators that must report it.
BROKEN: dict[str, tuple[dict[str, Any], set[str]]] = {
    "a code that is an object": (
        OBSERVATION | {"status": {"code": "final"}},
        {"schema", "medplum"},
    ),
    "an element FHIR does not define": (OBSERVATION | {"colour": "red"}, {"schema", "medplum"}),
    "a number as a string": (OBSERVATION | {"valueInteger": "14"}, {"schema", "medplum"}),
    "no status": ({k: v for k, v in OBSERVATION.items() if k != "status"}, {"medplum"}),
    "a value and why it is absent (obs-6)": (
        OBSERVATION | {"dataAbsentReason": {"text": "asked, not answered"}},
        {"medplum", "fhirpath"},
    ),
    "a nested broken entry": (
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": OBSERVATION | {"colour": "red"}}],
        },
        {"schema", "medplum"},
    ),
    "an invariant deep in a Questionnaire item (que-6)": (
        {
            "resourceType": "Questionnaire",
            "status": "active",
            "item": [
                {
                    "linkId": "g",
                    "type": "group",
                    "item": [{"linkId": "d", "type": "display", "required": True}],
                }
            ],
        },
        {"medplum", "fhirpath"},
    ),
    "an 'exists' condition answered with a number (que-7)": (
        {
            "resourceType": "Questionnaire",
            "status": "active",
            "item": [
                {"linkId": "a", "type": "integer"},
                {
                    "linkId": "b",
                    "type": "boolean",
                    "enableWhen": [{"question": "a", "operator": "exists", "answerInteger": 0}],
                },
            ],
        },
        {"fhirpath"},
    ),
    "a contained resource nothing refers to (dom-3)": (
        OBSERVATION | {"contained": [{"resourceType": "Device", "id": "unused"}]},
        {"fhirpath"},
    ),
}


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The validators' report on every broken resource at once (one node run: loading the
    R4 definitions takes seconds)."""
    directory = tmp_path_factory.mktemp("broken")
    for number, resource in enumerate(resource for resource, _ in BROKEN.values()):
        (directory / f"broken-{number}.json").write_text(json.dumps(resource))
    return validated(directory)


@pytest.mark.parametrize("case", BROKEN)
def test_each_validator_catches_what_it_is_there_to_catch(case: str, broken_report: Report) -> None:
    file = f"broken-{list(BROKEN).index(case)}.json"
    caught = {error["validator"] for error in broken_report.errors if error["file"] == file}
    assert caught >= BROKEN[case][1], broken_report.readable()
