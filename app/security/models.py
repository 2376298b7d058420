"""Rate-limit counters (the database backend of the rate limiter) and seen token ids."""

from __future__ import annotations

from datetime import datetime

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


class TokenUse(Base):
    """A JWT id seen from an issuer, kept until the token expires: a second use is a replay."""

    __tablename__ = "token_uses"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
