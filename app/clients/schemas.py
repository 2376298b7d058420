"""API shapes for client management."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.kernel.tenancy import TENANT_PATTERN
from app.security.principal import Scope

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class ClientCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "intake-web", "scopes": ["screenings:write", "screenings:read"]}]
        },
    )

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="What the client is (an integration, an app, a team): shown in listings "
        "and recorded with its actions. Not a secret, not a person's health information.",
        examples=["intake-web"],
    )
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(Scope),
        description="What the client may do; each must be one you hold yourself.",
        examples=[["screenings:write", "screenings:read"]],
    )
    tenant: str | None = Field(
        default=None,
        pattern=TENANT_PATTERN,
        description="Must be your own tenant (the default): an admin manages its own tenant's "
        "clients only.",
        examples=["default"],
    )


class ClientOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    tenant: str
    name: str
    key_prefix: str = Field(
        description="The visible start of the key (`clk_…`), to tell keys apart; not a secret.",
        examples=["clk_3fa9c2d1"],
    )
    scopes: list[Scope]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None = Field(
        description="Roughly when the key was last used (updated at most every few seconds)."
    )


class ClientCreated(ClientOut):
    api_key: str = Field(
        description="The key, shown this once: carelevel keeps only its hash. Send it as "
        "`Authorization: Bearer <key>`.",
        examples=["clk_3fa9c2d1.8Jx0sQ0bVb6qK2mN5p7r9t1v3x5z7B9D1F3H5J7L9N1"],
    )


class ClientPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ClientOut]
    next_cursor: str | None
