"""FHIR searches by patient: each screening's subject reference, indexed by tenant

``GET /fhir/r4/Observation?subject=Patient/123`` finds the screenings of a patient. The
subject a QuestionnaireResponse named is kept in ``fhir_context`` (JSON); it now also has a
column of its own, ``subject_reference``, normalised (relative or absolute as written, less a
``/_history/…`` version) and indexed like every list filter: tenant, reference, then the list's
order. On PostgreSQL the column and the index are added to the partitioned parent, which adds
them to every partition (and pg_partman makes the partitions to come from the parent). The
screenings already stored from a QuestionnaireResponse get their reference filled in.

Revision ID: 9d3b6f2e8c14
Revises: 3c8f1d6a9b57
Create Date: 2026-12-07 19:30:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d3b6f2e8c14"
down_revision: str | None = "3c8f1d6a9b57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_screenings_tenant_id_subject_reference_listed"
LENGTH = 300
# app/screenings/models.py (normal_reference) as of this revision.
REFERENCE = re.compile(
    r"((?:https?://[^\s/]+(?:/[^\s/]+)*/)?[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
BATCH = 1000


def upgrade() -> None:
    op.add_column("screenings", sa.Column("subject_reference", sa.String(LENGTH), nullable=True))
    _fill_in()
    # IF NOT EXISTS: on a large live database an operator may build it CONCURRENTLY first.
    op.create_index(
        INDEX,
        "screenings",
        ["tenant_id", "subject_reference", "created_at", "id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="screenings")
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_column("subject_reference")


def _normal(context: object) -> str | None:
    subject = context.get("subject") if isinstance(context, dict) else None
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str) or len(reference) > LENGTH:
        return None
    found = REFERENCE.fullmatch(reference)
    return found.group(1) if found else None


def _fill_in() -> None:
    """The subject reference of every screening that has a FHIR context, a batch at a time
    (only screenings evaluated from a QuestionnaireResponse have one)."""
    screenings = sa.table(
        "screenings",
        sa.column("id", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("fhir_context", sa.JSON()),
        sa.column("subject_reference", sa.String()),
    )
    connection = op.get_bind()
    query = (
        sa.select(screenings.c.id, screenings.c.created_at, screenings.c.fhir_context)
        .where(screenings.c.fhir_context.is_not(None))
        .order_by(screenings.c.id)
    )
    update = (
        sa.update(screenings)
        .where(
            screenings.c.id == sa.bindparam("row_id"),
            screenings.c.created_at == sa.bindparam("row_at"),
        )
        .values(subject_reference=sa.bindparam("reference"))
    )
    last = ""
    while True:
        rows = connection.execute(query.where(screenings.c.id > last).limit(BATCH)).all()
        if not rows:
            return
        changes = [
            {"row_id": row_id, "row_at": at, "reference": reference}
            for row_id, at, context in rows
            if (reference := _normal(context)) is not None
        ]
        if changes:
            connection.execute(update, changes)
        last = rows[-1][0]
