"""All SQL reading the audit trail (writing is in ``trail.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.kernel.pagination import after_row


async def audit_page(
    session: AsyncSession,
    tenant: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    **filters: Any,
) -> Sequence[AuditEvent]:
    """``tenant``'s events, newest first; ``after`` is the (recorded_at, id) last seen."""
    return (
        (await session.execute(audit_page_query(tenant, limit=limit, after=after, **filters)))
        .scalars()
        .all()
    )


def audit_page_query(
    tenant: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    client_id: str | None = None,
    failed: bool | None = None,
    status: int | None = None,
    recorded_from: datetime | None = None,
    recorded_to: datetime | None = None,
) -> Select[AuditEvent]:
    """A page of ``tenant``'s events, newest first, after the (recorded_at, id) last seen; each
    filter is served by an index that starts with the tenant (``AuditEvent.__table_args__``)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant)
        .order_by(AuditEvent.recorded_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(after_row(AuditEvent.recorded_at, AuditEvent.id, after))
    for column, value in (
        (AuditEvent.action, action),
        (AuditEvent.resource_type, resource_type),
        (AuditEvent.resource_id, resource_id),
        (AuditEvent.client_id, client_id),
        (AuditEvent.outcome, status),
    ):
        if value is not None:
            query = query.where(column == value)
    if failed is not None:
        query = query.where(AuditEvent.outcome >= 400 if failed else AuditEvent.outcome < 400)
    if recorded_from is not None:
        query = query.where(AuditEvent.recorded_at >= recorded_from)
    if recorded_to is not None:
        query = query.where(AuditEvent.recorded_at < recorded_to)
    return query
