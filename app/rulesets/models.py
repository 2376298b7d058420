"""Tables for rule sets, their versions and the log of lifecycle actions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.kernel.db import Base, IdColumn, new_id, utcnow


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ACTIVE = "active"
    RETIRED = "retired"


class RuleSet(Base):
    """A rule set: its key is unique per owner, which is ``shared`` (read by every tenant) or
    the tenant that forked or wrote it."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_rule_sets_owner_key"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleSetVersion(Base):
    """One version of a rule set. Published versions are immutable (enforced by the service);
    exactly one version per rule set may be active (enforced by the database)."""

    __tablename__ = "rule_set_versions"
    __table_args__ = (
        UniqueConstraint("rule_set_id", "version", name="uq_rule_set_versions_rule_set_version"),
        Index(
            "uq_rule_set_versions_one_active",
            "rule_set_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    rule_set_id: Mapped[str] = mapped_column(ForeignKey("rule_sets.id", ondelete="RESTRICT"))
    owner: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    parent_owner: Mapped[str | None] = mapped_column(String(64))
    parent_version: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str | None] = mapped_column(String(300))
    published_at: Mapped[datetime | None]
    activated_by: Mapped[str | None] = mapped_column(String(300))
    activated_at: Mapped[datetime | None]
    retired_by: Mapped[str | None] = mapped_column(String(300))
    retired_at: Mapped[datetime | None]


class RuleSetEvent(Base):
    """Append-only log of lifecycle actions on rule-set versions."""

    __tablename__ = "rule_set_events"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    rule_set_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("rule_set_versions.id", ondelete="SET NULL"), index=True
    )
    owner: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
