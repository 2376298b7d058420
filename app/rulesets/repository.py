"""All SQL about rule sets and their versions. A rule set is named by (owner, key)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.rulesets.models import RuleSet, RuleSetEvent, RuleSetVersion, VersionStatus


class RuleSetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rule_set(self, owner: str, key: str, *, lock: bool = False) -> RuleSet | None:
        """The rule set (owner, key); with ``lock``, locked until the transaction ends.

        Postgres locks the row (SELECT … FOR UPDATE). SQLite has no row locks and ignores FOR
        UPDATE: there the lock is a write that changes nothing, which takes the database's
        single write lock (waiting for it up to the busy timeout) and opens the transaction, so
        what is read next is what the previous writer committed. It must be the transaction's
        first statement; the driver runs reads before the first write outside the transaction.
        """
        if lock and self.session.get_bind().dialect.name == "sqlite":
            await self.session.execute(
                update(RuleSet)
                .where(RuleSet.owner == owner, RuleSet.key == key)
                .values(key=RuleSet.key)
                .execution_options(synchronize_session=False)
            )
        query = select(RuleSet).where(RuleSet.owner == owner, RuleSet.key == key)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_rule_set(self, owner: str, key: str) -> RuleSet:
        rule_set = RuleSet(owner=owner, key=key)
        self.session.add(rule_set)
        await self.session.flush()
        return rule_set

    async def rule_sets(self, owners: Sequence[str]) -> Sequence[RuleSet]:
        query = (
            select(RuleSet).where(RuleSet.owner.in_(owners)).order_by(RuleSet.key, RuleSet.owner)
        )
        return (await self.session.execute(query)).scalars().all()

    async def versions(
        self, owner: str, key: str, *, drafts: bool = True
    ) -> Sequence[RuleSetVersion]:
        """Every version of (owner, key), newest first, without their content."""
        query = (
            select(RuleSetVersion)
            .where(RuleSetVersion.owner == owner, RuleSetVersion.key == key)
            .order_by(RuleSetVersion.version.desc())
            .options(defer(RuleSetVersion.content, raiseload=True))
        )
        if not drafts:
            query = query.where(RuleSetVersion.status != VersionStatus.DRAFT)
        return (await self.session.execute(query)).scalars().all()

    async def version_overview(
        self, owners: Sequence[str]
    ) -> Sequence[tuple[str, str, int, str, str]]:
        """(owner, key, version, status, title) of every version of ``owners``' rule sets, by
        key and newest first."""
        query = (
            select(
                RuleSetVersion.owner,
                RuleSetVersion.key,
                RuleSetVersion.version,
                RuleSetVersion.status,
                RuleSetVersion.title,
            )
            .where(RuleSetVersion.owner.in_(owners))
            .order_by(RuleSetVersion.key, RuleSetVersion.version.desc())
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in await self.session.execute(query)]

    async def active_version_number(self, rule_set_id: str) -> int | None:
        query = select(RuleSetVersion.version).where(
            RuleSetVersion.rule_set_id == rule_set_id,
            RuleSetVersion.status == VersionStatus.ACTIVE,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def version(self, owner: str, key: str, version: int) -> RuleSetVersion | None:
        query = select(RuleSetVersion).where(
            RuleSetVersion.owner == owner,
            RuleSetVersion.key == key,
            RuleSetVersion.version == version,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def version_by_id(self, version_id: str) -> RuleSetVersion | None:
        return await self.session.get(RuleSetVersion, version_id)

    async def next_version_number(self, rule_set: RuleSet) -> int:
        """One more than any number this rule set has used, deleted drafts included, so a
        number in the event log always means one version."""
        stored = select(func.coalesce(func.max(RuleSetVersion.version), 0)).where(
            RuleSetVersion.rule_set_id == rule_set.id
        )
        logged = select(func.coalesce(func.max(RuleSetEvent.version), 0)).where(
            RuleSetEvent.owner == rule_set.owner, RuleSetEvent.key == rule_set.key
        )
        highest = max(
            int((await self.session.execute(stored)).scalar_one()),
            int((await self.session.execute(logged)).scalar_one()),
        )
        return highest + 1

    async def active_versions(self) -> Sequence[tuple[str, str, int, str, str]]:
        """(owner, key, version, id, sha256) of every active version: the one query each
        refresh makes."""
        query = select(
            RuleSetVersion.owner,
            RuleSetVersion.key,
            RuleSetVersion.version,
            RuleSetVersion.id,
            RuleSetVersion.sha256,
        ).where(RuleSetVersion.status == VersionStatus.ACTIVE)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in (await self.session.execute(query)).all()]

    async def owns_rule_set(self, owner: str, key: str) -> bool:
        query = select(RuleSet.id).where(RuleSet.owner == owner, RuleSet.key == key)
        return (await self.session.execute(query)).first() is not None

    async def version_status(
        self, owner: str, key: str, version: int
    ) -> tuple[str, str, str] | None:
        """(id, status, sha256) of a version: one small query per pinned request, which never
        reads the content (the compiled form comes from the cache)."""
        query = select(RuleSetVersion.id, RuleSetVersion.status, RuleSetVersion.sha256).where(
            RuleSetVersion.owner == owner,
            RuleSetVersion.key == key,
            RuleSetVersion.version == version,
        )
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], str(row[1]), row[2])

    async def demote_active(self, rule_set_id: str) -> None:
        """The active version of a rule set (if any) goes back to published."""
        await self.session.execute(
            update(RuleSetVersion)
            .where(
                RuleSetVersion.rule_set_id == rule_set_id,
                RuleSetVersion.status == VersionStatus.ACTIVE,
            )
            .values(status=VersionStatus.PUBLISHED)
        )

    def add(self, row: RuleSetVersion | RuleSetEvent) -> None:
        self.session.add(row)

    async def delete(self, row: RuleSetVersion) -> None:
        await self.session.delete(row)

    async def version_header(self, version_id: str) -> RuleSetVersion | None:
        """A version without its content (what describes it, not what it says)."""
        query = (
            select(RuleSetVersion)
            .where(RuleSetVersion.id == version_id)
            .options(defer(RuleSetVersion.content, raiseload=True))
        )
        return (await self.session.execute(query)).scalar_one_or_none()
