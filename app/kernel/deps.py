"""Dependencies shared by the routers (Annotated aliases, so signatures stay short). Each
domain's router declares the dependency of its own service.

Routers get services, never sessions: each service method is a unit of work that opens and
commits its own transaction (docs/architecture.md, "Unit of work").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.kernel.settings import Settings

# Every dependency is ``async def``: FastAPI runs a plain ``def`` in a worker thread, a thread
# hand-off per request for what is an attribute read.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
