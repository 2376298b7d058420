"""Programs, referrals and people: the directory a determination is matched against, the
referrals recorded from screenings, and a pseudonymous person id linking screenings over time

- ``programs``: each tenant's directory of treatment programs (its own and those it refers
  to); the document is a ``ProgramDocument`` (app/engine/programs.py). Indexed by tenant and
  the list's order, and by tenant and level.
- ``referrals``: a screening's person referred to a program, with the program's document as it
  was and the match that explained it. Each names its screening's ``created_at``, by which
  expiry deletes it with the screening's month (as decisions are).
- ``screenings.person_id``: the tenant's pseudonymous id of the person, indexed by tenant,
  person, then the list's order. On PostgreSQL the column and the index are added to the
  partitioned parent, which adds them to every partition. Screenings already stored keep no
  person id: nothing links them.
- ``decisions`` gain an index by tenant, screening and time: the latest decision of each of a
  tenant's screenings (people, the override report) without reading other tenants' decisions.

Revision ID: a7c3e9d41b26
Revises: 9d3b6f2e8c14
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7c3e9d41b26"
down_revision: str | None = "9d3b6f2e8c14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PERSON_INDEX = "ix_screenings_tenant_id_person_id_listed"


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("document", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
    )
    op.create_index(
        "ix_programs_tenant_id_created_at_id", "programs", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_programs_tenant_id_level_listed",
        "programs",
        ["tenant_id", "level", "created_at", "id"],
    )

    op.create_table(
        "referrals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("screening_id", sa.String(length=36), nullable=False),
        sa.Column("screening_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("program_id", sa.String(length=36), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=False),
        sa.Column("program", JSON_DOCUMENT, nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("match", JSON_DOCUMENT, nullable=False),
        sa.Column("referred_by", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    op.create_index(
        "ix_referrals_tenant_id_screening_id",
        "referrals",
        ["tenant_id", "screening_id", "created_at"],
    )
    op.create_index(
        "ix_referrals_tenant_id_program_id", "referrals", ["tenant_id", "program_id", "created_at"]
    )
    op.create_index(
        op.f("ix_referrals_screening_created_at"), "referrals", ["screening_created_at"]
    )

    op.create_index(
        "ix_decisions_tenant_id_screening_id",
        "decisions",
        ["tenant_id", "screening_id", "created_at"],
    )

    op.add_column("screenings", sa.Column("person_id", sa.String(length=64), nullable=True))
    # IF NOT EXISTS: on a large live database an operator may build it CONCURRENTLY first.
    op.create_index(
        PERSON_INDEX,
        "screenings",
        ["tenant_id", "person_id", "created_at", "id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index(PERSON_INDEX, table_name="screenings")
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_column("person_id")
    op.drop_index("ix_decisions_tenant_id_screening_id", table_name="decisions")
    op.drop_table("referrals")
    op.drop_table("programs")
