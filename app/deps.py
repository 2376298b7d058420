"""Dependencies shared by the routers (Annotated aliases, so signatures stay short)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from app.rulesets.cache import RuleSetCache
from app.screenings.service import ScreeningService
from app.settings import Settings

# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread, a thread
# hand-off per request for what is an attribute read.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_cache(request: Request) -> RuleSetCache:
    cache: RuleSetCache = request.app.state.rule_set_cache
    return cache


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A unit of work per request: committed before the response is sent."""
    async with session_scope(get_sessions(request)) as session:
        yield session


async def get_screening_service(request: Request) -> ScreeningService:
    service: ScreeningService = request.app.state.screening_service
    return service


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CacheDep = Annotated[RuleSetCache, Depends(get_cache)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ScreeningServiceDep = Annotated[ScreeningService, Depends(get_screening_service)]
