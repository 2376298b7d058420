"""The programs table: one row per program of a tenant's directory, its document validated as
``ProgramDocument`` (app/engine/programs.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, new_id, utcnow


class Program(Base):
    """A program as last edited. ``version`` counts the edits (1 when created) and makes the
    ETag; an edit replaces the document. Retiring (DELETE) keeps the row, so the referrals that
    name it still read it; a retired program is matched to no one."""

    __tablename__ = "programs"
    __table_args__ = (
        # The list's order within a tenant, and its one filter (level), each a seek.
        Index("ix_programs_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        Index("ix_programs_tenant_id_level_listed", "tenant_id", "level", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(300))
    retired_at: Mapped[datetime | None]
    retired_by: Mapped[str | None] = mapped_column(String(300))
