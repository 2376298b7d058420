"""Client use cases: create (the key is shown once), list, read, revoke.

Used by the HTTP API (an admin manages its own tenant), by the ``carelevel clients`` command
(the operator, any tenant) and by the first start of the embedded default (a local admin).
Each ``ClientService`` method is one unit of work: one transaction for what it reads and
writes and for the caller's audit event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.trail import record
from app.clients.repository import ClientRepository
from app.kernel.db import after_commit, hold_seeding_lock, new_id, utcnow
from app.kernel.errors import Conflict, FieldProblem, Forbidden, NotFound, Unprocessable
from app.kernel.pagination import decode_cursor, encode_cursor
from app.kernel.tenancy import is_tenant_id
from app.security.api_keys import generate_key
from app.security.caller import Caller
from app.security.models import ApiClient
from app.security.principal import Scope


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
    """A new client of ``tenant`` with a new key, added to ``session`` (flushed, not
    committed: the caller's unit of work commits it)."""
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


def _revoke(client: ApiClient, revoked_by: str) -> None:
    """Revoke ``client`` (idempotent: a revoked client keeps its first revocation)."""
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        client.revoked_by = revoked_by


def _grantable(caller: Caller, tenant: str | None, scopes: Iterable[Scope]) -> None:
    """An admin creates clients of its own tenant, with scopes it holds itself."""
    if tenant is not None and tenant != caller.tenant:
        raise Unprocessable(
            "An admin creates clients of its own tenant only.",
            errors=[FieldProblem(pointer="#/tenant", detail="must be your own tenant")],
        )
    beyond = sorted(set(scopes) - caller.principal.scopes)
    if beyond:
        # An admin delegates what it holds: no key may outrank the one (or the token, with its
        # issuer's ceiling) that made it.
        raise Forbidden(f"A client can grant only scopes it holds itself; not {' '.join(beyond)}.")


class ClientService:
    """API-client use cases. ``forget`` (the authenticator's) drops a revoked client's trusted
    key from this process once the revocation has committed."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        forget: Callable[[str], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.forget = forget

    async def create(
        self,
        caller: Caller,
        name: str,
        scopes: Iterable[Scope],
        *,
        tenant: str | None = None,
        created_by: str | None = None,
    ) -> CreatedClient:
        """A new client of the caller's tenant (``tenant``, when given, must be that one),
        holding no scope the caller lacks; ``created_by`` defaults to the caller."""
        scopes = list(scopes)
        _grantable(caller, tenant, scopes)
        async with self.sessions() as session, session.begin():
            created = await create_client(
                session, caller.tenant, name, scopes, created_by or caller.label
            )
            record(session, caller, 201, resource_id=created.client.id)
        return created

    async def create_first_admin(self, caller: Caller, name: str) -> CreatedClient | None:
        """A client ``name`` of the caller's tenant with the caller's scopes, made only while
        there is no client at all (the first start of the embedded default); None otherwise."""
        async with self.sessions() as session, session.begin():
            await hold_seeding_lock(session)  # processes starting at once make one admin
            if await ClientRepository(session).count():
                return None
            scopes = caller.principal.scopes
            created = await create_client(session, caller.tenant, name, scopes, caller.label)
            record(session, caller, 201, resource_id=created.client.id)
        return created

    async def page(
        self, caller: Caller, limit: int, cursor: str | None
    ) -> tuple[list[ApiClient], str | None]:
        """The caller's tenant's clients, oldest first, and the cursor of the next page."""
        after = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session, session.begin():
            repository = ClientRepository(session)
            rows = list(await repository.page(caller.tenant, limit=limit + 1, after=after))
            record(session, caller, 200, details={"returned": len(rows[:limit])})
        last = rows[limit - 1] if len(rows) > limit else None
        return rows[:limit], encode_cursor(last.created_at, last.id) if last else None

    async def every(self, tenant: str | None) -> list[ApiClient]:
        """Every client of ``tenant`` (None: of every tenant), oldest first: the operator's
        listing, which the operator's own trail does not record."""
        async with self.sessions() as session, session.begin():
            return list(await ClientRepository(session).page(tenant, limit=100_000))

    async def get(self, caller: Caller, client_id: str) -> ApiClient:
        async with self.sessions() as session, session.begin():
            client = await _client(session, caller.tenant, client_id)
            record(session, caller, 200)
        return client

    async def revoke(self, caller: Caller, client_id: str) -> ApiClient:
        """Revoke a client of the caller's tenant other than the caller itself."""
        async with self.sessions() as session, session.begin():
            client = await _client(session, caller.tenant, client_id)
            if client.id == caller.client_id:
                raise Conflict(
                    "A client cannot revoke its own key (it would lock itself out): revoke it "
                    "with another admin client or with `carelevel clients revoke`."
                )
            self._revoke(session, client, caller)
        return client

    async def revoke_any(
        self, reference: str, caller_for: Callable[[str], Caller]
    ) -> ApiClient | None:
        """Revoke the client with id or key prefix ``reference``, of any tenant, as the
        ``caller_for`` its tenant (the operator at the command line); None: there is none."""
        async with self.sessions() as session, session.begin():
            client = await ClientRepository(session).find(reference)
            if client is None:
                return None
            caller = caller_for(client.tenant_id)
            self._revoke(session, client, caller)
        return client

    def _revoke(self, session: AsyncSession, client: ApiClient, caller: Caller) -> None:
        _revoke(client, caller.label)
        record(session, caller, 200, resource_id=client.id)
        forget = self.forget
        if forget is not None:
            after_commit(session, lambda: forget(client.id))


async def _client(session: AsyncSession, tenant: str, client_id: str) -> ApiClient:
    client = await ClientRepository(session).get(tenant, client_id)
    if client is None:
        raise NotFound(f"No client with id '{client_id}'.")
    return client
