"""The tenants whose retention differs from the default (CARELEVEL_*_RETENTION_YEARS)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, utcnow


class RetentionPolicy(Base):
    """A tenant's own retention, in years, set with ``carelevel retention set``."""

    __tablename__ = "retention_policies"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    screenings_years: Mapped[int] = mapped_column(Integer)
    audit_years: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(300))
