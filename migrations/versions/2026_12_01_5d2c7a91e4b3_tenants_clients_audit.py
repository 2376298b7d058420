"""tenants, API clients, audit trail, rate-limit counters

Every screening, decision and idempotency key now belongs to a tenant and a client; rule sets
belong to an owner (``shared`` or a tenant). Rows written before tenancy existed belong to the
tenant ``default`` (the operator tenant unless configured otherwise) and the client ``legacy``;
existing rule sets become the shared ones.

Revision ID: 5d2c7a91e4b3
Revises: 28f0a8ad0529
Create Date: 2026-12-01 08:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5d2c7a91e4b3"
down_revision: str | None = "28f0a8ad0529"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
LEGACY_TENANT = "default"
LEGACY_CLIENT = "legacy"
SHARED = "shared"

# (table, column, type, value for existing rows)
BACKFILLED = (
    ("screenings", "tenant_id", sa.String(length=64), LEGACY_TENANT),
    ("screenings", "client_id", sa.String(length=300), LEGACY_CLIENT),
    ("screenings", "rule_set_owner", sa.String(length=64), SHARED),
    ("decisions", "tenant_id", sa.String(length=64), LEGACY_TENANT),
    ("decisions", "client_id", sa.String(length=300), LEGACY_CLIENT),
    ("idempotency_keys", "tenant_id", sa.String(length=64), LEGACY_TENANT),
    ("idempotency_keys", "client_id", sa.String(length=300), LEGACY_CLIENT),
    ("rule_sets", "owner", sa.String(length=64), SHARED),
    ("rule_set_versions", "owner", sa.String(length=64), SHARED),
    ("rule_set_events", "owner", sa.String(length=64), SHARED),
)
WIDENED_ACTORS = (
    ("rule_set_events", "actor", False),
    ("rule_set_versions", "created_by", False),
    ("rule_set_versions", "published_by", True),
    ("rule_set_versions", "activated_by", True),
    ("rule_set_versions", "retired_by", True),
)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=300), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=300), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("key_prefix", name=op.f("uq_api_clients_key_prefix")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_clients_tenant_id_created_at", ["tenant_id", "created_at"], unique=False
        )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=300), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("details", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_tenant_id_recorded_at_id",
            ["tenant_id", "recorded_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_tenant_id_resource",
            ["tenant_id", "resource_type", "resource_id"],
            unique=False,
        )
    # Append-only: the application never updates an audit event, and the database refuses to.
    if _is_postgres():
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        )

    # Counters only: on Postgres they skip the write-ahead log (a crash merely resets them).
    op.create_table(
        "rate_limit_windows",
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("window", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "window", name=op.f("pk_rate_limit_windows")),
        prefixes=["UNLOGGED"] if _is_postgres() else [],
    )

    # New columns: filled for existing rows, then without a default (the code always sets them).
    for table, column, type_, value in BACKFILLED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(column, type_, nullable=False, server_default=sa.text(f"'{value}'"))
            )
    for table, column, type_, _value in BACKFILLED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=type_, server_default=None)

    for table, column, nullable in WIDENED_ACTORS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.VARCHAR(length=200),
                type_=sa.String(length=300),
                existing_nullable=nullable,
            )
    with op.batch_alter_table("rule_set_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_owner", sa.String(length=64), nullable=True))
    op.execute("UPDATE rule_set_versions SET parent_owner = owner WHERE parent_version IS NOT NULL")

    with op.batch_alter_table("rule_sets", schema=None) as batch_op:
        batch_op.drop_constraint("uq_rule_sets_key", type_="unique")
        batch_op.create_unique_constraint("uq_rule_sets_owner_key", ["owner", "key"])

    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_index("ix_screenings_created_at_id")
        batch_op.create_index(
            "ix_screenings_tenant_id_created_at_id",
            ["tenant_id", "created_at", "id"],
            unique=False,
        )

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["tenant_id", "client_id", "key"])


def downgrade() -> None:
    tenant_owned = op.get_bind().execute(
        sa.text("SELECT count(*) FROM rule_sets WHERE owner <> 'shared'")
    )
    if tenant_owned.scalar_one():
        raise RuntimeError(
            "Cannot downgrade: tenants own rule sets, which the previous schema cannot hold."
        )
    # Keys of different clients may collide once the tenant and client are gone; they are
    # short-lived, so they are dropped rather than merged.
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_constraint("pk_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_idempotency_keys", ["key"])

    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_index("ix_screenings_tenant_id_created_at_id")
        batch_op.create_index("ix_screenings_created_at_id", ["created_at", "id"], unique=False)

    with op.batch_alter_table("rule_sets", schema=None) as batch_op:
        batch_op.drop_constraint("uq_rule_sets_owner_key", type_="unique")
        batch_op.create_unique_constraint("uq_rule_sets_key", ["key"])

    with op.batch_alter_table("rule_set_versions", schema=None) as batch_op:
        batch_op.drop_column("parent_owner")
    for table, column, nullable in WIDENED_ACTORS:
        # Names of clients and token subjects may be longer than the old columns allowed.
        op.execute(
            f"UPDATE {table} SET {column} = substr({column}, 1, 200) WHERE length({column}) > 200"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=300),
                type_=sa.VARCHAR(length=200),
                existing_nullable=nullable,
            )
    for table, column, _type, _value in reversed(BACKFILLED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)

    op.drop_table("rate_limit_windows")
    if _is_postgres():
        op.execute("DROP TRIGGER audit_events_no_update ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_tenant_id_resource")
        batch_op.drop_index("ix_audit_events_tenant_id_recorded_at_id")
    op.drop_table("audit_events")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index("ix_api_clients_tenant_id_created_at")
    op.drop_table("api_clients")
