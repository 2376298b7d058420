"""What a hook call's prefetch (or what carelevel fetched in its place) holds: whether a
resource is about the patient in context, and the chart resources pre-population can use.
Pure."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from app.engine import DEFAULT_RULE_SET_KEY
from app.fhir.response import ANSWERED
from app.fhir.terminology import Vocabulary
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE

_RELATIVE_PATIENT = re.compile(r"Patient/([A-Za-z0-9.\-]{1,64})(?:/_history/[A-Za-z0-9.\-]{1,64})?")


def _base(url: str) -> str:
    """A FHIR base comparable with another: scheme and host in lower case, no trailing '/'."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def trusted_bases(fhir_server: str | None, configured: Collection[str]) -> frozenset[str]:
    """The FHIR bases an absolute patient reference may name: the call's ``fhirServer`` and
    the FHIR servers the CDS client's configuration lists (comparable forms)."""
    given = [fhir_server] if fhir_server is not None else []
    return frozenset(_base(server) for server in [*given, *configured])


def names_patient(reference: object, patient_id: str, bases: Collection[str]) -> bool:
    """Whether a Reference.reference names the patient ``patient_id``: ``Patient/{id}``, the
    bare id, or an absolute ``{base}/Patient/{id}`` (optionally ``/_history/{v}``) whose base
    is one of ``bases`` (``trusted_bases``): the same id on another server is another
    person."""
    if not isinstance(reference, str):
        return False
    if reference == patient_id:
        return True
    match = _RELATIVE_PATIENT.fullmatch(reference)
    if match is not None:
        return match.group(1) == patient_id
    base, separator, rest = reference.rpartition("/Patient/")
    if not separator or not base:
        return False
    try:
        parts = urlsplit(base)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return False
    if _base(base) not in bases:
        return False
    return names_patient(f"Patient/{rest}", patient_id, ())


def subject_reference(resource: Mapping[str, Any]) -> object:
    subject = resource.get("subject")
    return subject.get("reference") if isinstance(subject, dict) else None


def answers_ours(resource: object, vocabulary: Vocabulary) -> bool:
    """Whether ``resource`` is a completed (or amended) QuestionnaireResponse to carelevel's
    Questionnaire: any version, under the canonical base or the former one (still accepted on
    input), as the EHR's search for the patient's responses brings them all."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        return False
    cited = resource.get("questionnaire")
    ours = {
        Vocabulary(base).questionnaire(DEFAULT_RULE_SET_KEY)
        for base in (vocabulary.base, LEGACY_FHIR_CANONICAL_BASE)
    }
    return (
        resource.get("status") in ANSWERED
        and isinstance(cited, str)
        and cited.partition("|")[0] in ours
    )


def is_failure(value: object) -> bool:
    """A prefetch the client could not fetch: it sends an OperationOutcome in its place."""
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def needs(values: Mapping[str, object], key: str) -> bool:
    """Whether prefetch ``key`` is still to be read: absent, or not fetched by the client
    (a null value is an answer: nothing there)."""
    return key not in values or is_failure(values[key])


def resources_of(value: object) -> Iterator[dict[str, Any]]:
    """The resources of one prefetch value: itself, or the entries of a Bundle."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return
    if value["resourceType"] != "Bundle":
        yield value
        return
    entries = value.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            yield resource


def chart_resources(
    values: Mapping[str, object], patient_id: str, bases: Collection[str]
) -> list[dict[str, Any]]:
    """The resources of the chart keys' values, keeping only the patient's own: the Patient
    itself, and resources whose ``subject`` or ``patient`` names the patient in context
    (``names_patient`` with ``bases``; never one person's data in another's screening)."""
    kept: list[dict[str, Any]] = []
    for value in values.values():
        for resource in resources_of(value):
            if _belongs_to(resource, patient_id, bases):
                kept.append(resource)
    return kept


def _belongs_to(resource: Mapping[str, Any], patient_id: str, bases: Collection[str]) -> bool:
    if resource["resourceType"] == "Patient":
        return resource.get("id") == patient_id
    for field in ("subject", "patient"):
        holder = resource.get(field)
        if isinstance(holder, dict):
            return names_patient(holder.get("reference"), patient_id, bases)
    return False
