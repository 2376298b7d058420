"""Screenings and audit events partitioned by month; tenants' own retention periods

On PostgreSQL, ``screenings`` and ``audit_events`` become tables partitioned by month of their
timestamp (``created_at``, ``recorded_at``), so that expiry drops a month's partition instead of
deleting its rows one by one. A partitioned table's keys must hold its partition key: the
primary keys become ``(id, created_at)`` and ``(id, recorded_at)``. Each table is renamed, the
partitioned one created with the same columns, one partition made for every month from the
oldest row's to three months after the current one (the service keeps creating them ahead) plus
a default partition, the rows copied, the old table dropped and the indexes (and the audit
trail's append-only trigger) built again. On a large live database, see docs/deployment.md
(Retention and partitioning) for doing this online first.

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

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

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


def _next_month(instant: datetime) -> datetime:
    """The first instant of the month after ``instant``'s, in UTC."""
    return datetime(instant.year + instant.month // 12, instant.month % 12 + 1, 1, tzinfo=UTC)


def _months(first: datetime, last: datetime) -> Iterator[datetime]:
    """The first instant of every month from ``first``'s to ``last``'s, in UTC."""
    month = datetime(first.year, first.month, 1, tzinfo=UTC)
    while month <= last:
        yield month
        month = _next_month(month)


def _partition(table: str, key: str) -> None:
    """PostgreSQL: ``table`` as a table partitioned by month of ``key``, rows and all; left as
    it is if an operator converted it online already (docs/deployment.md)."""
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
    now = datetime.now(UTC)
    oldest = op.get_bind().execute(sa.text(f"SELECT min({key}) FROM {old}")).scalar() or now
    last = now
    for _ in range(MONTHS_AHEAD):
        last = _next_month(last)
    for start in _months(oldest.astimezone(UTC), last):
        op.execute(
            f"CREATE TABLE {table}_{start:%Y_%m} PARTITION OF {table} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{_next_month(start).isoformat()}')"
        )
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.drop_table(old)
    _keys_and_indexes(table, ["id", key])
    if table == "audit_events":
        op.execute(APPEND_ONLY_POSTGRES)  # on every partition, those to come too


def _unpartition(table: str, key: str) -> None:
    """PostgreSQL: ``table`` as one plain table again, rows and all."""
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
