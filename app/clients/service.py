"""Client use cases: create (the key is shown once), list, read, revoke.

Used by the HTTP API (an admin manages its own tenant), by the ``carelevel clients`` command
(the operator, any tenant) and by the first start of the embedded default (a local admin).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.repository import ClientRepository
from app.db import new_id, utcnow
from app.errors import NotFound
from app.pagination import decode_cursor, encode_cursor
from app.security.api_keys import generate_key
from app.security.models import ApiClient
from app.security.principal import Scope
from app.tenancy import is_tenant_id


@dataclass(frozen=True, slots=True)
class CreatedClient:
    client: ApiClient
    api_key: str  # the only moment the key exists outside the caller's hands


def client_body(client: ApiClient) -> dict[str, Any]:
    return {
        "id": client.id,
        "tenant": client.tenant_id,
        "name": client.name,
        "key_prefix": client.key_prefix,
        "scopes": client.scopes,
        "created_at": client.created_at,
        "created_by": client.created_by,
        "revoked_at": client.revoked_at,
        "revoked_by": client.revoked_by,
        "last_used_at": client.last_used_at,
    }


async def create_client(
    session: AsyncSession, tenant: str, name: str, scopes: Iterable[Scope], created_by: str
) -> CreatedClient:
    """A new client of ``tenant`` with a new key (flushed, not committed)."""
    if not is_tenant_id(tenant):
        raise ValueError("a tenant id is a lowercase slug (a-z, 0-9, -), and not 'shared'")
    key = generate_key()
    client = ApiClient(
        id=new_id(),
        tenant_id=tenant,
        name=name,
        key_prefix=key.prefix,
        key_hash=key.hash,
        scopes=sorted(scope.value for scope in set(scopes)),
        created_at=utcnow(),
        created_by=created_by,
    )
    ClientRepository(session).add(client)
    await session.flush()
    return CreatedClient(client, key.secret)


async def get_client(session: AsyncSession, tenant: str, client_id: str) -> ApiClient:
    client = await ClientRepository(session).get(tenant, client_id)
    if client is None:
        raise NotFound(f"No client with id '{client_id}'.")
    return client


async def revoke_client(session: AsyncSession, client: ApiClient, revoked_by: str) -> ApiClient:
    """Revoke ``client`` (idempotent: a revoked client keeps its first revocation)."""
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        client.revoked_by = revoked_by
        await session.flush()
    return client


async def client_page(
    session: AsyncSession, tenant: str | None, limit: int, cursor: str | None
) -> tuple[list[ApiClient], str | None]:
    after = decode_cursor(cursor) if cursor else None
    rows = list(await ClientRepository(session).page(tenant, limit=limit + 1, after=after))
    next_cursor = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor
