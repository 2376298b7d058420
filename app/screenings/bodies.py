"""Response bodies of the screening endpoints, built from stored rows or from a screening just
evaluated (whose determination keeps the bytes the engine wrote)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.engine.determination import Determination
from app.rulesets.deciding import DecidingVersion, rule_set_used
from app.screenings.models import Decision, Screening


@dataclass(frozen=True, slots=True)
class Decided:
    """A determination and the stored version that decided it."""

    rule_set: DecidingVersion
    determination: Determination
    determination_json: bytes  # as the API returns it and the database stores it


def evaluation_body(decided: Decided) -> bytes:
    return orjson.dumps(
        {
            "rule_set": decided.rule_set.rule_set_used(),
            "determination": orjson.Fragment(decided.determination_json),
        }
    )


def stored_rule_set(row: Screening) -> dict[str, Any]:
    return rule_set_used(
        row.rule_set_owner, row.rule_set_key, row.rule_set_version, row.rule_set_sha256
    )


def screening_body(row: Screening, decision: Decision | None = None) -> dict[str, Any]:
    return build_screening_body(
        row.id,
        row.created_at,
        row.external_reference,
        stored_rule_set(row),
        row.engine_version,
        row.determination,
        decision_body(decision, row) if decision else None,
    )


def build_screening_body(
    screening_id: str,
    created_at: datetime,
    external_reference: str | None,
    rule_set: dict[str, Any],
    engine_version: str,
    determination: Any,
    latest_decision: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": screening_id,
        "created_at": created_at,
        "external_reference": external_reference,
        "rule_set": rule_set,
        "engine_version": engine_version,
        "determination": determination,
        "latest_decision": latest_decision,
    }


def decision_body(decision: Decision, screening: Screening) -> dict[str, Any]:
    return {
        "id": decision.id,
        "screening_id": screening.id,
        "created_at": decision.created_at,
        "final_level": decision.final_level,
        "recommended_level": decision.recommended_level,
        "matches_recommendation": decision.final_level is not None
        and decision.final_level == decision.recommended_level,
        "variance_reasons": decision.variance_reasons,
        "comment": decision.comment,
        "decided_by": decision.decided_by,
        "outcome": decision.outcome,
        "source": decision.source,
    }


@dataclass(slots=True)
class Stored:
    """A stored screening as the API answers it. A screening just evaluated keeps its
    determination as the engine serialised it: ``json()`` embeds those bytes, and ``body``
    decodes them only when asked (FHIR and CDS Hooks read the determination)."""

    payload: dict[str, Any]
    replayed: bool
    fhir_context: dict[str, Any] | None = None
    determination_json: bytes | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self.determination_json is not None:
            decoded = orjson.loads(self.determination_json)
            self.payload = {
                name: decoded if name == "determination" else value
                for name, value in self.payload.items()
            }
            self.determination_json = None
        return self.payload

    def json(self) -> bytes:
        """The response body: the bytes ``orjson.dumps(self.body)`` would give."""
        return orjson.dumps(self.payload)
