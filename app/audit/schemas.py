"""API shapes for reading the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEventOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    recorded_at: datetime = Field(description="When the service recorded it (UTC).")
    tenant: str
    client_id: str = Field(description="The API client, or `jwt:<provider>:<client>`.")
    subject: str | None = Field(description="The token's `sub` for identity-provider tokens.")
    action: str = Field(examples=["screening.read"])
    resource_type: str = Field(examples=["screening"])
    resource_id: str | None = Field(
        description="A screening or client id, or `owner/key[/version]` for rule sets.",
        examples=["7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"],
    )
    outcome: int = Field(description="The HTTP status the request was answered with.")
    request_id: str | None = Field(description="Also in the access log and problem `instance`.")
    source_ip: str | None
    details: dict[str, Any] = Field(
        description="Ids, numbers and names only (never answers or determinations)."
    )


class AuditEventPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[AuditEventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
