"""Response bodies of the screening endpoints, built from stored rows or from a screening just
evaluated (whose determination keeps the bytes the engine wrote).

Every body that carries a determination carries its ``summary`` just before it, beside it and
never inside: the stored determination stays the engine's, byte for byte, and replays compare
it whole. The determination is shown without its ``trace`` unless the request asks for it
(``?include=trace``); what is stored always keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final

import orjson

from app.engine.determination import Determination
from app.rulesets.deciding import DecidingVersion, rule_set_used
from app.screenings.models import Decision, Screening
from app.screenings.readable import SUMMARY_READS, Readable, about_stored, document, summary

TRACE = "trace"
BRIEF_FIELDS: Final = tuple(field.name for field in fields(Determination) if field.name != TRACE)


@dataclass(frozen=True, slots=True)
class Decided:
    """A determination just evaluated, the stored version that decided it, and its JSON:
    ``whole_json`` as the engine wrote it (what the database stores; None when nothing needs
    it) and ``brief_json`` without the trace (what responses show by default)."""

    rule_set: DecidingVersion
    determination: Determination
    whole_json: bytes | None
    brief_json: bytes
    ask_next: list[dict[str, Any]] = field(default_factory=list)


# The brief fields of each determination class (engine 3.0.0 determinations add fields).
_BRIEF_FIELDS: dict[type, tuple[str, ...]] = {Determination: BRIEF_FIELDS}


def brief_json(determination: Determination) -> bytes:
    """The determination's JSON without its trace, in the engine's field order."""
    names = _BRIEF_FIELDS.get(type(determination))
    if names is None:
        names = tuple(f.name for f in fields(determination) if f.name != TRACE)
        _BRIEF_FIELDS[type(determination)] = names
    return orjson.dumps({name: getattr(determination, name) for name in names})


def without_trace(determination: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in determination.items() if name != TRACE}


@dataclass(frozen=True, slots=True)
class Shown:
    """A determination as a response shows it: its summary, and the determination whole and
    brief as orjson writes them (decoded, or bytes already written, as ``orjson.Fragment``)."""

    summary: str
    whole: Any
    brief: Any

    def determination(self, include_trace: bool) -> Any:
        return self.whole if include_trace else self.brief


def shown_decided(decided: Decided) -> Shown:
    # The summary reads a few fields: those alone are written and read back, which costs less
    # than reading the whole brief determination (on the hot path, about the time the trace
    # no longer takes to write).
    determination = decided.determination
    read = {
        name: getattr(determination, name) for name in SUMMARY_READS if hasattr(determination, name)
    }
    whole = None if decided.whole_json is None else orjson.Fragment(decided.whole_json)
    return Shown(
        summary(orjson.loads(orjson.dumps(read))), whole, orjson.Fragment(decided.brief_json)
    )


def shown_stored(determination: Mapping[str, Any]) -> Shown:
    brief = without_trace(determination)
    return Shown(summary(brief), determination, brief)


def with_summary(
    body: Mapping[str, Any],
    shown: Shown,
    include_trace: bool,
    ask_next: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``body`` with the summary just before its determination, shown with or without the
    trace, and (given ``ask_next``) what to ask next just after it."""
    presented: dict[str, Any] = {}
    for name, value in body.items():
        if name == "determination":
            presented["summary"] = shown.summary
            presented[name] = shown.determination(include_trace)
            if ask_next is not None:
                presented["ask_next"] = ask_next
            continue
        presented[name] = value
    return presented


# --- POST /v1/screenings/evaluate -------------------------------------------------------------


def evaluation_body(decided: Decided, include_trace: bool) -> bytes:
    body = {"rule_set": decided.rule_set.rule_set_used(), "determination": None}
    shown = shown_decided(decided)
    return orjson.dumps(with_summary(body, shown, include_trace, decided.ask_next))


def evaluation_readable(decided: Decided) -> Readable:
    about = about_stored(decided.rule_set.rule_set_used(), decided.rule_set.engine_version)
    return document(orjson.loads(decided.brief_json), about)


# --- stored screenings ------------------------------------------------------------------------


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
        row.person_id,
    )


def build_screening_body(
    screening_id: str,
    created_at: datetime,
    external_reference: str | None,
    rule_set: dict[str, Any],
    engine_version: str,
    determination: Any,
    latest_decision: dict[str, Any] | None,
    person_id: str | None = None,
) -> dict[str, Any]:
    """A stored screening, its determination whole (what FHIR and CDS Hooks read); the API
    answers it ``with_summary``."""
    return {
        "id": screening_id,
        "created_at": created_at,
        "external_reference": external_reference,
        "person_id": person_id,
        "rule_set": rule_set,
        "engine_version": engine_version,
        "determination": determination,
        "latest_decision": latest_decision,
    }


def screening_json(
    body: Mapping[str, Any], include_trace: bool, ask_next: list[dict[str, Any]]
) -> bytes:
    """The response to GET /v1/screenings/{id} (``body`` from ``screening_body``)."""
    shown = shown_stored(body["determination"])
    return orjson.dumps(with_summary(body, shown, include_trace, ask_next))


def screening_readable(body: Mapping[str, Any]) -> Readable:
    """The readable document of a stored screening (``body`` from ``screening_body``)."""
    about = about_stored(
        body["rule_set"],
        body["engine_version"],
        screening_id=body["id"],
        created_at=body["created_at"].isoformat(),
        external_reference=body["external_reference"],
    )
    return document(without_trace(body["determination"]), about)


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
    """A stored screening as the service hands it back. One just evaluated and stored keeps
    what decided it (``decided``): its payload embeds the engine's bytes, and ``body`` decodes
    them only when asked (FHIR and CDS Hooks read the determination)."""

    payload: dict[str, Any]
    replayed: bool
    fhir_context: dict[str, Any] | None = None
    decided: Decided | None = None
    ask_next: list[dict[str, Any]] = field(default_factory=list)
    _decoded: bool = False

    @property
    def body(self) -> dict[str, Any]:
        if self.decided is not None and not self._decoded:
            assert self.decided.whole_json is not None  # a stored determination is whole
            decoded = orjson.loads(self.decided.whole_json)
            self.payload = {
                name: decoded if name == "determination" else value
                for name, value in self.payload.items()
            }
            self._decoded = True
        return self.payload


def stored_json(stored: Stored, include_trace: bool) -> bytes:
    """The response to POST /v1/screenings: the same shape for the first answer and for its
    replays (``Idempotency-Key``)."""
    if stored.decided is not None:
        shown = shown_decided(stored.decided)
    else:
        shown = shown_stored(stored.payload["determination"])
    return orjson.dumps(with_summary(stored.payload, shown, include_trace, stored.ask_next))
