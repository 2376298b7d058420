"""The security tables: API clients (credentials and scopes) and seen token ids (rate-limit
counts live in Redis or in memory, app/security/rate_limit.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, JSONDocument, new_id, utcnow


class ApiClient(Base):
    """A client of one tenant with its scopes. The key is stored only as its SHA-256; a revoked
    client stays (so the audit trail can name it) but authenticates no more."""

    __tablename__ = "api_clients"
    __table_args__ = (Index("ix_api_clients_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(300))
    last_used_at: Mapped[datetime | None]


class TokenUse(Base):
    """A JWT id seen from an issuer, kept until the token expires: a second use is a replay."""

    __tablename__ = "token_uses"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
