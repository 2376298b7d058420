"""The audit trail table. Rows are only ever inserted (a database trigger refuses updates), and
deleted once past their tenant's retention (app/retention)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, new_id, utcnow

# The columns GET /v1/audit-events filters on by equality, one at a time (``outcome`` is the
# HTTP status filter).
LIST_FILTERS = ("action", "resource_type", "resource_id", "client_id", "outcome")


class AuditEvent(Base):
    """Who did what to which resource, when, and how it ended. Never answers, determinations,
    free text or credentials: ``details`` holds ids, version numbers and filter names only.

    On PostgreSQL the table is partitioned by month of ``recorded_at``, which is therefore part
    of the primary key; SQLite keeps one plain table with the same columns and keys."""

    __tablename__ = "audit_events"
    # Every list filter has an index that starts with the tenant and ends with the list's order
    # (see app/kernel/pagination.py); failures have a partial index of their own.
    __table_args__ = (
        Index("ix_audit_events_tenant_id_recorded_at_id", "tenant_id", "recorded_at", "id"),
        *(
            Index(
                f"ix_audit_events_tenant_id_{column}_listed",
                "tenant_id",
                column,
                "recorded_at",
                "id",
            )
            for column in LIST_FILTERS
        ),
        Index(
            "ix_audit_events_tenant_id_failed_listed",
            "tenant_id",
            "recorded_at",
            "id",
            postgresql_where=text("outcome >= 400"),
            sqlite_where=text("outcome >= 400"),
        ),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    recorded_at: Mapped[datetime] = mapped_column(primary_key=True, default=utcnow)
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
