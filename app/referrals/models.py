"""The referrals table: a screening's person referred to a program of the directory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, JSONDocument, new_id, utcnow


class Referral(Base):
    """A referral recorded from a screening to a program, append-only. It keeps the program's
    document as it was when referred (``program_version``, ``program``) and the match that
    explained the choice, so it reads the same after the program is edited or retired.

    Like a decision, a referral lasts as long as its screening: it names the screening's
    ``created_at``, by which expiry (app/retention) deletes it with the screening's month. No
    foreign key into the partitioned screenings table (see ``Decision``)."""

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_tenant_id_screening_id", "tenant_id", "screening_id", "created_at"),
        Index("ix_referrals_tenant_id_program_id", "tenant_id", "program_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(300))
    screening_id: Mapped[str] = mapped_column(IdColumn)
    screening_created_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    program_id: Mapped[str] = mapped_column(IdColumn)
    program_version: Mapped[int] = mapped_column(Integer)
    program: Mapped[dict[str, Any]]
    level: Mapped[str] = mapped_column(String(32))
    match: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    referred_by: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="api")
