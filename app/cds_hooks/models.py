"""The cards carelevel showed, so that an EHR's feedback on a card reaches its screening."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, utcnow


class IssuedCard(Base):
    """A card returned by a CDS service call, with the screening it reports (none for a card
    inviting a screening), by its id and ``created_at``: a card lasts as long as its screening
    (no foreign key, as for decisions: app/screenings/models.py)."""

    __tablename__ = "cds_cards"

    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(300))
    service_id: Mapped[str] = mapped_column(String(64))
    hook_instance: Mapped[str] = mapped_column(String(200))
    screening_id: Mapped[str | None] = mapped_column(IdColumn, index=True)
    screening_created_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
