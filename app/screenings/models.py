"""Tables for screenings (append-only), clinician decisions and idempotency keys."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, JSONDocument, new_id, utcnow

# The columns GET /v1/screenings filters on, one at a time.
# person_id's index is also what reads a person's screenings (GET /v1/people/{id}/screenings).
LIST_FILTERS = (
    "external_reference",
    "level",
    "urgency",
    "rule_set_key",
    "rule_set_version",
    "person_id",
)

# A FHIR reference carelevel can search by: relative (``Patient/123``) or absolute
# (``https://ehr.example/fhir/Patient/123``), without its ``/_history/…`` version.
_REFERENCE = re.compile(
    r"((?:https?://[^\s/]+(?:/[^\s/]+)*/)?[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
SUBJECT_REFERENCE_LENGTH = 300
# A person id is an opaque token the tenant chooses (docs/intake-workflow.md says how an EHR
# derives one from its patient without revealing who it is).
PERSON_ID_LENGTH = 64
PERSON_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{7,63}$"


def normal_reference(reference: object) -> str | None:
    """The searchable form of a FHIR reference: as written, relative or absolute, less its
    version. None for anything else (a contained ``#id``, a ``urn:uuid:``, an identifier
    only): not searchable. A relative and an absolute reference are never taken for each other:
    which server an absolute one names is the EHR's to say, not carelevel's."""
    if not isinstance(reference, str) or len(reference) > SUBJECT_REFERENCE_LENGTH:
        return None
    found = _REFERENCE.fullmatch(reference)
    return found.group(1) if found else None


def subject_reference(fhir_context: dict[str, Any] | None) -> str | None:
    """The normal reference of the subject a QuestionnaireResponse named (None: none)."""
    subject = (fhir_context or {}).get("subject")
    return normal_reference(subject.get("reference")) if isinstance(subject, dict) else None


class Screening(Base):
    """A stored screening: the normalised answers, the determination and the exact rule-set
    version and engine version that produced it. Rows are never updated; they are deleted once
    past their tenant's retention (app/retention).

    On PostgreSQL the table is partitioned by month of ``created_at``, which is therefore part of
    the primary key; a look-up by id names the months its time-ordered id allows
    (``stored_near_id``). SQLite keeps one plain table with the same columns and keys."""

    __tablename__ = "screenings"
    # Every list filter has an index that starts with the tenant and ends with the list's order,
    # so a page is a seek and a short read at any depth (app/kernel/pagination.py).
    __table_args__ = (
        Index("ix_screenings_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        Index("ix_screenings_tenant_id_response_digest", "tenant_id", "response_digest"),
        *(
            Index(
                f"ix_screenings_tenant_id_{column}_listed", "tenant_id", column, "created_at", "id"
            )
            for column in LIST_FILTERS
        ),
        # FHIR searches by patient (GET /fhir/r4/Observation?subject=…), newest first.
        Index(
            "ix_screenings_tenant_id_subject_reference_listed",
            "tenant_id",
            "subject_reference",
            "created_at",
            "id",
        ),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(primary_key=True, default=utcnow)
    external_reference: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    rule_set_version_id: Mapped[str] = mapped_column(
        ForeignKey("rule_set_versions.id", ondelete="RESTRICT"), index=True
    )
    rule_set_owner: Mapped[str] = mapped_column(String(64))
    rule_set_key: Mapped[str] = mapped_column(String(64))
    rule_set_version: Mapped[int] = mapped_column(Integer)
    rule_set_sha256: Mapped[str] = mapped_column(String(64))
    engine_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    iop_verdict: Mapped[str] = mapped_column(String(32))
    answers: Mapped[dict[str, Any]]
    determination: Mapped[dict[str, Any]]
    # For screenings that came as a FHIR QuestionnaireResponse: its subject, encounter and
    # references, which the result resources point back to.
    fhir_context: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # Its subject's reference, normalised (``subject_reference``): what FHIR searches find.
    subject_reference: Mapped[str | None] = mapped_column(String(SUBJECT_REFERENCE_LENGTH))
    # sha256 of what identifies that QuestionnaireResponse and its answers, so that the same
    # response shown again (CDS Hooks) opens the same screening.
    response_digest: Mapped[str | None] = mapped_column(String(64))
    # The tenant's pseudonymous id of the person screened (``PERSON_ID_PATTERN``): links a
    # person's screenings over time without a name or any direct identifier.
    person_id: Mapped[str | None] = mapped_column(String(PERSON_ID_LENGTH))


class Decision(Base):
    """The clinician's final level for a screening, with coded variance reasons. Append-only:
    a later decision supersedes an earlier one without changing it.

    ``outcome`` is ``decided`` (a level recorded through the API), or, from CDS Hooks feedback,
    ``accepted`` (the recommendation taken) or ``overridden`` (not taken; the level chosen
    instead is not known, so ``final_level`` is empty).

    A decision lasts as long as its screening: it names the screening's ``created_at`` too, by
    which expiry deletes the decisions of a month before it drops the month's partition (empty
    only for a decision the previous release recorded while this one was being rolled out:
    expiry fills it in). No foreign key: one into a partitioned table would make each
    partition's drop check, under a lock that stops every request on screenings, that no
    decision still refers to it.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        Index("uq_decisions_card_feedback", "card_uuid", "outcome", "outcome_at", unique=True),
        # A tenant's decisions by screening, newest last: the latest decision of each screening
        # (screening responses, people, the override report) without reading other tenants'.
        Index("ix_decisions_tenant_id_screening_id", "tenant_id", "screening_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    screening_id: Mapped[str] = mapped_column(IdColumn, index=True)
    screening_created_at: Mapped[datetime | None] = mapped_column(index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    final_level: Mapped[str | None] = mapped_column(String(32))
    recommended_level: Mapped[str | None] = mapped_column(String(32))
    variance_reasons: Mapped[list[str]] = mapped_column(JSONDocument)
    comment: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16), default="decided")
    source: Mapped[str] = mapped_column(String(16), default="api")
    card_uuid: Mapped[str | None] = mapped_column(String(64))
    outcome_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """An Idempotency-Key seen on POST /v1/screenings, with the screening it stored: written
    together with that screening, so always ``completed`` (``in_progress`` rows, without a
    screening, are claims left by earlier versions and are deleted when next used). Keys belong
    to the client that sent them: two clients never share one."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    screening_id: Mapped[str | None] = mapped_column(IdColumn)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
