"""``Caller``: who makes a request and which action it performs, as the access check hands it
to the routes. Services scope every query to its tenant and write the audit event of its
action."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.security.actions import Action
from app.security.principal import Principal


@dataclass(slots=True)
class Caller:
    """The authenticated principal of one request and the action it performs."""

    principal: Principal
    action: Action
    request_id: str | None = None
    source_ip: str | None = None
    resource_id: str | None = None  # what the path names; a created resource's id replaces it
    recorded: bool = field(default=False)  # its audit event is written (or being written)

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def client_id(self) -> str:
        return self.principal.client_id

    @property
    def label(self) -> str:
        return self.principal.label
