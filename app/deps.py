"""Dependencies shared by the routers (Annotated aliases, so signatures stay short).

Routers get services, never sessions: each service method is a unit of work that opens and
commits its own transaction (docs/architecture.md, "Unit of work").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.clients.service import ClientService
from app.rulesets.service import RuleSetService
from app.screenings.service import ScreeningService
from app.settings import Settings

# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread, a thread
# hand-off per request for what is an attribute read.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_screening_service(request: Request) -> ScreeningService:
    service: ScreeningService = request.app.state.screening_service
    return service


async def get_rule_set_service(request: Request) -> RuleSetService:
    service: RuleSetService = request.app.state.rule_set_service
    return service


async def get_client_service(request: Request) -> ClientService:
    service: ClientService = request.app.state.client_service
    return service


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ScreeningServiceDep = Annotated[ScreeningService, Depends(get_screening_service)]
RuleSetServiceDep = Annotated[RuleSetService, Depends(get_rule_set_service)]
ClientServiceDep = Annotated[ClientService, Depends(get_client_service)]
