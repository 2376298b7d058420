"""Rate-limit counters (the database backend of the rate limiter)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RateLimitWindow(Base):
    """Requests a client made in one fixed window. On Postgres the table is UNLOGGED (no WAL:
    a crash forgets the counts, which only resets the limits)."""

    __tablename__ = "rate_limit_windows"

    client_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
