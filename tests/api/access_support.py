"""Helpers for the access-control specifications: every operation of the OpenAPI schema, so a
new endpoint is covered the moment it exists (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from app.security.principal import Scope

PUBLIC = {("GET", "/healthz")}
UNKNOWN_ID = "0b3f2f7e-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    scopes: frozenset[Scope]

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    def path(self, **values: Any) -> str:
        """The template with its parameters filled (plausible values unless given)."""
        defaults = {
            "screening_id": UNKNOWN_ID,
            "client_id": UNKNOWN_ID,
            "owner": "shared",
            "key": "iop-level-of-care",
            "version": 1,
        }
        return self.template.format(**(defaults | values))


def operations(app: FastAPI) -> list[Operation]:
    """Every documented operation with the scopes its security requirement names."""
    found = []
    for template, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            requirement = (operation.get("security") or [{}])[0]
            scopes = frozenset(Scope(s) for s in requirement.get("bearer", []))
            found.append(Operation(method.upper(), template, scopes))
    return found


def protected(app: FastAPI) -> list[Operation]:
    return [op for op in operations(app) if (op.method, op.template) not in PUBLIC]
