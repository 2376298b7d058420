"""The SQL authentication runs: an API client by its key prefix, and when it was last used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.security.models import ApiClient


class CredentialRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_prefix(self, prefix: str) -> ApiClient | None:
        query = select(ApiClient).where(ApiClient.key_prefix == prefix)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def touch(self, client_id: str, now: datetime) -> None:
        await self.session.execute(
            update(ApiClient)
            .where(ApiClient.id == client_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
