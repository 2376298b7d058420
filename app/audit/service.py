"""Reading the audit trail: the caller's tenant only; the reading is itself recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.audit.repository import audit_page
from app.audit.trail import record
from app.kernel.pagination import decode_cursor, encode_cursor
from app.security.caller import Caller


def event_body(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "recorded_at": event.recorded_at,
        "tenant": event.tenant_id,
        "client_id": event.client_id,
        "subject": event.subject,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "source_ip": event.source_ip,
        "details": event.details,
    }


async def audit_events(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    *,
    limit: int,
    cursor: str | None,
    filters: dict[str, Any],
) -> dict[str, Any]:
    """A page of the caller's tenant's events, newest first."""
    after = decode_cursor(cursor) if cursor else None
    async with sessions() as session, session.begin():
        rows = await audit_page(session, caller.tenant, limit=limit + 1, after=after, **filters)
        used = sorted(name for name, value in filters.items() if value is not None)
        record(session, caller, 200, details={"filters": used, "returned": len(rows[:limit])})
    last = rows[limit - 1] if len(rows) > limit else None
    return {
        "items": [event_body(row) for row in rows[:limit]],
        "next_cursor": encode_cursor(last.recorded_at, last.id) if last else None,
    }
