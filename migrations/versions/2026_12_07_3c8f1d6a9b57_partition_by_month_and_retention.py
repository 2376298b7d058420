"""Screenings and audit events partitioned by month; tenants' own retention periods

On PostgreSQL, ``screenings`` and ``audit_events`` become tables partitioned by month of their
timestamp (``created_at``, ``recorded_at``), so that expiry drops a month's partition instead of
deleting its rows one by one. pg_partman 4 manages the partitions: the extension is created in
the schema ``partman`` unless it is there already (creating it takes a superuser: see
docs/deployment.md), and each table is registered with ``partman.create_parent`` (native,
monthly, a partition for every month from the oldest row's to three months after the current
one, and a default partition; ``infinite_time_partitions`` so that months keep being made when
no row arrives, no retention until carelevel gives it one). A partitioned table's keys must
hold its partition key: the primary keys become ``(id, created_at)`` and ``(id, recorded_at)``.
Each table is renamed, the partitioned one created with the same columns and registered, the
rows copied, the old table dropped and the indexes (and the audit trail's append-only trigger)
built again. On a large live database, see docs/deployment.md (Retention and partitioning) for
doing this online first. The downgrade removes the tables from pg_partman's configuration (the
extension stays: other tables may use it, and only a superuser may drop it).

Decisions and CDS cards last as long as their screening: they record its ``created_at`` too,
and expiry deletes them by it before a month's partition goes. Their foreign keys to
``screenings`` are dropped: one into a partitioned table would make each partition's detach
check, under a lock that stops every request on screenings, that no row refers to it.

SQLite keeps plain tables with the same columns and keys: only the keys, the decisions' and
cards' new column and the policy table change there.

Revision ID: 3c8f1d6a9b57
Revises: e5a1c3f08d27
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c8f1d6a9b57"
down_revision: str | None = "e5a1c3f08d27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITION_KEYS = {"screenings": "created_at", "audit_events": "recorded_at"}
SCREENING_FILTERS = ("external_reference", "level", "urgency", "rule_set_key", "rule_set_version")
AUDIT_FILTERS = ("action", "resource_type", "resource_id", "client_id", "outcome")
FAILED = "outcome >= 400"
# Each table's indexes at this revision: (name, columns, partial index condition).
INDEXES: dict[str, list[tuple[str, list[str], str | None]]] = {
    "screenings": [
        ("ix_screenings_rule_set_version_id", ["rule_set_version_id"], None),
        ("ix_screenings_tenant_id_created_at_id", ["tenant_id", "created_at", "id"], None),
        ("ix_screenings_tenant_id_response_digest", ["tenant_id", "response_digest"], None),
        *(
            (f"ix_screenings_tenant_id_{c}_listed", ["tenant_id", c, "created_at", "id"], None)
            for c in SCREENING_FILTERS
        ),
    ],
    "audit_events": [
        ("ix_audit_events_tenant_id_recorded_at_id", ["tenant_id", "recorded_at", "id"], None),
        *(
            (f"ix_audit_events_tenant_id_{c}_listed", ["tenant_id", c, "recorded_at", "id"], None)
            for c in AUDIT_FILTERS
        ),
        ("ix_audit_events_tenant_id_failed_listed", ["tenant_id", "recorded_at", "id"], FAILED),
    ],
}
RULE_SET_VERSION_KEY = "fk_screenings_rule_set_version_id_rule_set_versions"
# The tables whose rows name a screening.
FOLLOWING = ("decisions", "cds_cards")
MONTHS_AHEAD = 3

# Each partition's columns get their parent's compression (LZ4 for the stored documents):
# pg_partman makes partitions LIKE their parent without it.
COMPRESS_LIKE_PARENT = """
DO $$
DECLARE change record;
BEGIN
  FOR change IN
    SELECT format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION %s', i.inhrelid::regclass,
                  child.attname, CASE parent.attcompression WHEN 'l' THEN 'lz4' ELSE 'pglz' END)
             AS statement
    FROM pg_inherits i
    JOIN pg_attribute parent ON parent.attrelid = i.inhparent AND parent.attnum > 0
      AND NOT parent.attisdropped AND parent.attcompression <> ''
    JOIN pg_attribute child ON child.attrelid = i.inhrelid AND child.attname = parent.attname
    WHERE i.inhparent = '{table}'::regclass AND child.attcompression <> parent.attcompression
  LOOP
    EXECUTE change.statement;
  END LOOP;
END $$
"""
APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
)
APPEND_ONLY_POSTGRES = (
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    _following_screenings_by_month()
    if _is_postgres():
        _pg_partman()
        for table, key in PARTITION_KEYS.items():
            _partition(table, key)
    else:
        for table, key in PARTITION_KEYS.items():
            _primary_key(table, ["id", key])
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute(APPEND_ONLY_SQLITE)
    op.create_table(
        "retention_policies",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("screenings_years", sa.Integer(), nullable=False),
        sa.Column("audit_years", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_retention_policies")),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
    if _is_postgres():
        for table, key in reversed(PARTITION_KEYS.items()):
            _unpartition(table, key)
    else:
        for table in reversed(PARTITION_KEYS):
            _primary_key(table, ["id"])
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute(APPEND_ONLY_SQLITE)
    _following_screenings_by_key()


def _following_screenings_by_month() -> None:
    """Decisions and cards record their screening's created_at, and no longer reference it.
    The column may be empty: the previous release, serving until this one is rolled out, does
    not fill it (expiry does). Each step is skipped where an operator did it already, online
    (docs/deployment.md)."""
    for table in FOLLOWING:
        op.add_column(
            table,
            sa.Column("screening_created_at", sa.DateTime(timezone=True), nullable=True),
            if_not_exists=_is_postgres(),  # SQLite has no IF NOT EXISTS here (nor online work)
        )
        op.execute(
            f"UPDATE {table} SET screening_created_at = (SELECT created_at FROM screenings "
            f"WHERE screenings.id = {table}.screening_id) "
            "WHERE screening_id IS NOT NULL AND screening_created_at IS NULL"
        )
        reference = f"fk_{table}_screening_id_screenings"
        if _is_postgres():
            op.drop_constraint(reference, table, type_="foreignkey", if_exists=True)
        else:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_constraint(reference, type_="foreignkey")
        op.create_index(
            f"ix_{table}_screening_created_at", table, ["screening_created_at"], if_not_exists=True
        )


def _following_screenings_by_key() -> None:
    for table in reversed(FOLLOWING):
        # Rows whose screening is gone can only be left by an expiry that was interrupted
        # between deleting them and their screening: nothing refers to them any more.
        op.execute(
            f"DELETE FROM {table} WHERE screening_id IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM screenings WHERE screenings.id = {table}.screening_id)"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_screening_created_at")
            batch_op.drop_column("screening_created_at")
            batch_op.create_foreign_key(
                f"fk_{table}_screening_id_screenings",
                "screenings",
                ["screening_id"],
                ["id"],
                ondelete="RESTRICT",
            )


def _primary_key(table: str, columns: list[str]) -> None:
    """SQLite: the same table with another primary key (the table is copied: the audit trail's
    trigger goes with the old copy and is made again by the caller)."""
    with op.batch_alter_table(table, schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint(f"pk_{table}", type_="primary")
        batch_op.create_primary_key(f"pk_{table}", columns)


def _pg_partman() -> None:
    """The pg_partman extension in the schema ``partman``, created unless it is there, and
    months reckoned in UTC (pg_partman computes them in the session's time zone)."""
    found = op.get_bind().execute(
        sa.text(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_partman'"
        )
    )
    schema = found.scalar()
    if schema is None:
        op.execute("CREATE SCHEMA IF NOT EXISTS partman")
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
    elif schema != "partman":
        raise RuntimeError(f"pg_partman is in the schema {schema}: carelevel needs it in partman")
    op.execute("SELECT set_config('TimeZone', 'UTC', true)")


def _partition(table: str, key: str) -> None:
    """PostgreSQL: ``table`` as a table partitioned by month of ``key`` and managed by
    pg_partman, rows and all; left as it is if an operator converted it online already
    (docs/deployment.md)."""
    kind = op.get_bind().execute(
        sa.text(f"SELECT relkind::text FROM pg_class WHERE oid = '{table}'::regclass")
    )
    if kind.scalar() == "p":
        return
    old = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} DROP CONSTRAINT pk_{table}")  # its name is needed again
    for name, _columns, _where in INDEXES[table]:
        op.drop_index(name, table_name=old)
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING COMPRESSION "
        f"INCLUDING STORAGE) PARTITION BY RANGE ({key})"
    )
    op.execute(
        f"SELECT partman.create_parent(p_parent_table => current_schema() || '.{table}', "
        f"p_control => '{key}', p_type => 'native', p_interval => 'monthly', "
        f"p_premake => {MONTHS_AHEAD}, p_start_partition => "
        f"(SELECT date_trunc('month', coalesce(min({key}), now()))::text FROM {old}))"
    )
    op.execute(
        "UPDATE partman.part_config SET infinite_time_partitions = true, "
        f"retention_keep_table = false WHERE parent_table = current_schema() || '.{table}'"
    )
    op.execute(COMPRESS_LIKE_PARENT.format(table=table))  # pg_partman's LIKE leaves it out
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.drop_table(old)
    _keys_and_indexes(table, ["id", key])
    if table == "audit_events":
        op.execute(APPEND_ONLY_POSTGRES)  # on every partition, those to come too


def _unpartition(table: str, key: str) -> None:
    """PostgreSQL: ``table`` as one plain table again, rows and all, and no longer in
    pg_partman's configuration."""
    parent = f"current_schema() || '.{table}'"
    template = op.get_bind().execute(
        sa.text(f"SELECT template_table FROM partman.part_config WHERE parent_table = {parent}")
    )
    for name in template.scalars():
        op.execute(f"DROP TABLE IF EXISTS {name}")
    op.execute(f"DELETE FROM partman.part_config WHERE parent_table = {parent}")
    partitioned = f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {partitioned}")
    op.execute(f"ALTER TABLE {partitioned} DROP CONSTRAINT pk_{table}")
    for name, _columns, _where in INDEXES[table]:
        op.drop_index(name, table_name=partitioned)
    op.execute(
        f"CREATE TABLE {table} (LIKE {partitioned} INCLUDING DEFAULTS INCLUDING COMPRESSION "
        "INCLUDING STORAGE)"
    )
    op.execute(f"INSERT INTO {table} SELECT * FROM {partitioned}")
    op.drop_table(partitioned)  # with its partitions
    _keys_and_indexes(table, ["id"])
    if table == "audit_events":
        op.execute(APPEND_ONLY_POSTGRES)


def _keys_and_indexes(table: str, primary_key: list[str]) -> None:
    """PostgreSQL: the keys and indexes of ``table``, built once its rows are in."""
    op.create_primary_key(f"pk_{table}", table, primary_key)
    for name, columns, where in INDEXES[table]:
        condition = {"postgresql_where": sa.text(where)} if where else {}
        op.create_index(name, table, columns, **condition)
    if table == "screenings":
        op.create_foreign_key(
            RULE_SET_VERSION_KEY,
            "screenings",
            "rule_set_versions",
            ["rule_set_version_id"],
            ["id"],
            ondelete="RESTRICT",
        )
