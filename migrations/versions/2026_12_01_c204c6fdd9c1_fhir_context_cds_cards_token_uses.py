"""FHIR context of screenings, CDS Hooks cards and feedback, seen token ids

A screening that came as a FHIR QuestionnaireResponse keeps its subject and encounter
(``fhir_context``) and a digest of the response, to find it again. Decisions may come from CDS
Hooks feedback: accepted, or overridden without a level chosen (``final_level`` becomes
optional). Cards link feedback to screenings; seen JWT ids refuse replays of CDS clients'
tokens.

Revision ID: c204c6fdd9c1
Revises: 5d2c7a91e4b3
Create Date: 2026-12-01 10:01:26.335451
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c204c6fdd9c1"
down_revision: str | None = "5d2c7a91e4b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "token_uses",
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name=op.f("pk_token_uses")),
    )
    with op.batch_alter_table("token_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_token_uses_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "cds_cards",
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("hook_instance", sa.String(length=200), nullable=False),
        sa.Column("screening_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["screening_id"],
            ["screenings.id"],
            name=op.f("fk_cds_cards_screening_id_screenings"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_cds_cards")),
    )
    with op.batch_alter_table("cds_cards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cds_cards_screening_id"), ["screening_id"], unique=False
        )

    # Existing decisions were all recorded through the API.
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcome", sa.String(16), nullable=False, server_default="decided")
        )
        batch_op.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="api")
        )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("outcome", existing_type=sa.String(16), server_default=None)
        batch_op.alter_column("source", existing_type=sa.String(16), server_default=None)
        batch_op.add_column(sa.Column("card_uuid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("final_level", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.alter_column(
            "decided_by",
            existing_type=sa.VARCHAR(length=200),
            type_=sa.String(length=300),
            existing_nullable=False,
        )
        batch_op.create_index(
            "uq_decisions_card_feedback", ["card_uuid", "outcome", "outcome_at"], unique=True
        )

    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fhir_context", JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column("response_digest", sa.String(64), nullable=True))
        batch_op.create_index(
            "ix_screenings_tenant_id_response_digest",
            ["tenant_id", "response_digest"],
            unique=False,
        )


def downgrade() -> None:
    # Feedback without a chosen level, and its cards, cannot be held by the previous schema.
    op.execute("DELETE FROM decisions WHERE final_level IS NULL")
    op.execute(
        "UPDATE decisions SET decided_by = substr(decided_by, 1, 200) "
        "WHERE length(decided_by) > 200"
    )
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_index("ix_screenings_tenant_id_response_digest")
        batch_op.drop_column("response_digest")
        batch_op.drop_column("fhir_context")

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("uq_decisions_card_feedback")
        batch_op.alter_column(
            "decided_by",
            existing_type=sa.String(length=300),
            type_=sa.VARCHAR(length=200),
            existing_nullable=False,
        )
        batch_op.alter_column("final_level", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("outcome_at")
        batch_op.drop_column("card_uuid")
        batch_op.drop_column("source")
        batch_op.drop_column("outcome")

    with op.batch_alter_table("cds_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_cards_screening_id"))
    op.drop_table("cds_cards")
    with op.batch_alter_table("token_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_uses_expires_at"))
    op.drop_table("token_uses")
