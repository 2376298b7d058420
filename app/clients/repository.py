"""All SQL the client administration runs on API clients (authentication has its own:
app/security/credentials.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kernel.pagination import after_row
from app.security.models import ApiClient


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, client: ApiClient) -> None:
        self.session.add(client)

    async def get(self, tenant: str | None, client_id: str) -> ApiClient | None:
        """The client ``client_id``; of ``tenant`` only, unless ``tenant`` is None (the CLI)."""
        query = select(ApiClient).where(ApiClient.id == client_id)
        if tenant is not None:
            query = query.where(ApiClient.tenant_id == tenant)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find(self, reference: str) -> ApiClient | None:
        """A client by id or key prefix (the CLI accepts either)."""
        query = select(ApiClient).where(
            or_(ApiClient.id == reference, ApiClient.key_prefix == reference)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self, tenant: str | None, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> Sequence[ApiClient]:
        """Clients oldest first; ``after`` is the (created_at, id) of the last one seen."""
        query = select(ApiClient).order_by(ApiClient.created_at, ApiClient.id)
        if tenant is not None:
            query = query.where(ApiClient.tenant_id == tenant)
        if after is not None:
            query = query.where(
                after_row(ApiClient.created_at, ApiClient.id, after, newest_first=False)
            )
        return (await self.session.execute(query.limit(limit))).scalars().all()

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(ApiClient.id)))).scalar_one())
