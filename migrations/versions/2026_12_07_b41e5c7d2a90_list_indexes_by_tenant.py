"""Lists in constant time per page: an index per list filter, starting with the tenant

The lists of screenings and audit events are read newest first, page by page, with a keyset
cursor ``(created_at, id) < (…)``. Each filter now has an index that starts with the tenant,
then the filtered column, then the list's order, so a page is a seek and a short read at any
depth; the single-column indexes on a screening's reference, level and urgency (which started
with the column, not the tenant) are replaced, and so is the audit trail's resource index.
Failed events have a partial index of their own. The indexes are created if they do not exist
yet, so an operator can build them ``CONCURRENTLY`` on a large live database before migrating
(docs/deployment.md).

Revision ID: b41e5c7d2a90
Revises: 7e1f0b3c9a42
Create Date: 2026-12-07 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "b41e5c7d2a90"
down_revision: str | None = "7e1f0b3c9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCREENING_FILTERS = ("external_reference", "level", "urgency", "rule_set_key", "rule_set_version")
AUDIT_FILTERS = ("action", "resource_type", "resource_id", "client_id", "outcome")
FAILED = "outcome >= 400"


def upgrade() -> None:
    # IF NOT EXISTS: an operator with a large live trail builds these CONCURRENTLY first
    # (docs/deployment.md), and the migration then only drops the indexes they replace.
    for column in SCREENING_FILTERS:
        op.create_index(
            f"ix_screenings_tenant_id_{column}_listed",
            "screenings",
            ["tenant_id", column, "created_at", "id"],
            if_not_exists=True,
        )
    for column in AUDIT_FILTERS:
        op.create_index(
            f"ix_audit_events_tenant_id_{column}_listed",
            "audit_events",
            ["tenant_id", column, "recorded_at", "id"],
            if_not_exists=True,
        )
    op.create_index(
        "ix_audit_events_tenant_id_failed_listed",
        "audit_events",
        ["tenant_id", "recorded_at", "id"],
        postgresql_where=text(FAILED),
        sqlite_where=text(FAILED),
        if_not_exists=True,
    )
    op.drop_index("ix_screenings_external_reference", table_name="screenings")
    op.drop_index("ix_screenings_level", table_name="screenings")
    op.drop_index("ix_screenings_urgency", table_name="screenings")
    op.drop_index("ix_audit_events_tenant_id_resource", table_name="audit_events")


def downgrade() -> None:
    op.create_index(
        "ix_audit_events_tenant_id_resource",
        "audit_events",
        ["tenant_id", "resource_type", "resource_id"],
    )
    op.create_index("ix_screenings_urgency", "screenings", ["urgency"])
    op.create_index("ix_screenings_level", "screenings", ["level"])
    op.create_index("ix_screenings_external_reference", "screenings", ["external_reference"])
    op.drop_index("ix_audit_events_tenant_id_failed_listed", table_name="audit_events")
    for column in reversed(AUDIT_FILTERS):
        op.drop_index(f"ix_audit_events_tenant_id_{column}_listed", table_name="audit_events")
    for column in reversed(SCREENING_FILTERS):
        op.drop_index(f"ix_screenings_tenant_id_{column}_listed", table_name="screenings")
