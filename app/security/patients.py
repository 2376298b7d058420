"""What a patient-bound principal may do: a token from a SMART launch carrying the EHR's
patient context (``IdentityProvider.patient_claim``) reaches that patient's data and nothing
else, whatever scopes it holds.

Each request is decided where its action is authorized (app/security/access.py): an action
about no one's data (the Questionnaire, the terminology, the stateless evaluation) is open to
it; a route that names its subjects in the request declares a ``PatientRule`` reading them,
and each must be the patient; a route reading stored results declares ``PatientRule(stored=
True)`` and the service reads only the patient's (``Principal.may_see``). Every other
operation is refused (403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request

from app.kernel.errors import Forbidden
from app.security.actions import ActionSpec
from app.security.principal import PatientContext

# The subject references a request names (relative or absolute, as sent); None or empty: none.
SubjectsOf = Callable[[Request], Awaitable[Sequence[str] | None]]


@dataclass(frozen=True, slots=True)
class PatientRule:
    """How a route lets a patient-bound principal through: ``subjects`` reads the subjects the
    request names (each must be the patient, and there must be one); ``stored``: the route
    reads stored results, and the service keeps to the patient's."""

    subjects: SubjectsOf | None = None
    stored: bool = False


async def admit_patient(
    request: Request, patient: PatientContext, spec: ActionSpec, rule: PatientRule | None
) -> None:
    """Let the request of a principal bound to ``patient`` through, or refuse it (403)."""
    if spec.patient_open or (rule is not None and rule.stored):
        return
    if rule is None or rule.subjects is None:
        raise Forbidden(
            "This access token is bound to one patient (a SMART patient context): this "
            "operation is not open to it."
        )
    subjects = await rule.subjects(request)
    if not subjects:
        raise Forbidden(
            "This access token is bound to one patient (a SMART patient context): name that "
            "patient as the subject."
        )
    if not all(patient.names(subject) for subject in subjects):
        raise Forbidden(
            "This access token is bound to one patient (a SMART patient context): another "
            "patient is not its to reach."
        )
