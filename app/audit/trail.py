"""Writing the audit trail.

A request that succeeds records its event in the transaction of the change it makes (or of the
read it performs): both commit, or neither does. A request that fails after it was
authenticated records its event afterwards, in a short transaction of its own, with the status
it was answered with (a denied scope, an id of another tenant, an invalid body).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEvent
from app.kernel.db import after_commit, new_id, utcnow
from app.security.actions import ACTIONS
from app.security.caller import Caller

logger = logging.getLogger("carelevel.audit")


def _printable(value: str | None, limit: int) -> str | None:
    """A value the trail can hold whatever a failed request named in its path: without control
    characters (Postgres refuses NUL), and no longer than the column."""
    if value is None:
        return None
    cleaned = "".join(c if c.isprintable() else "\ufffd" for c in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def _event_values(
    caller: Caller, outcome: int, resource_id: str | None, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "recorded_at": utcnow(),
        "tenant_id": caller.principal.tenant,
        "client_id": caller.principal.client_id,
        "subject": caller.principal.subject,
        "action": caller.action.value,
        "resource_type": ACTIONS[caller.action].resource_type.value,
        "resource_id": _printable(resource_id or caller.resource_id, 300),
        "outcome": outcome,
        "request_id": caller.request_id,
        "source_ip": caller.source_ip,
        "details": details,
    }


def _event(caller: Caller, outcome: int, resource_id: str | None, details: dict[str, Any]) -> Any:
    return AuditEvent(**_event_values(caller, outcome, resource_id, details))


def audit_event_values(
    caller: Caller,
    outcome: int,
    *,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The column values of the event of ``caller``'s action (None for an action that is not
    audited), for a statement that writes it with the work itself; ``record`` adds the event
    to a session instead. The caller marks ``caller.recorded`` once that statement ran."""
    if not ACTIONS[caller.action].audited:
        return None
    return _event_values(caller, outcome, resource_id, details or {})


def record(
    session: AsyncSession,
    caller: Caller,
    outcome: int,
    *,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the event of ``caller``'s action to ``session``'s transaction.

    ``details`` holds ids, numbers and names only: never answers, determinations or free text.
    """
    if not ACTIONS[caller.action].audited:
        return
    session.add(_event(caller, outcome, resource_id, details or {}))

    def recorded() -> None:
        caller.recorded = True

    after_commit(session, recorded)


async def record_failure(
    sessions: async_sessionmaker[AsyncSession], caller: Caller, status: int
) -> None:
    """Record a failed request's event in a transaction of its own (once per request)."""
    if caller.recorded or not ACTIONS[caller.action].audited:
        return
    caller.recorded = True
    try:
        async with sessions() as session, session.begin():
            session.add(_event(caller, status, None, {}))
    except Exception as error:  # the answer to the client must not depend on this write
        logger.error(
            "audit event not written: action=%s request_id=%s (%s)",
            caller.action.value,
            caller.request_id,
            type(error).__name__,
        )


async def audit_failure(request: Request, status: int) -> None:
    """Record the failure of an authenticated request (the error handlers' failure hook)."""
    caller = getattr(request.state, "caller", None)
    if caller is not None and status != 503:  # with the database away, the write would wait
        await record_failure(request.app.state.sessions, caller, status)
