"""The active version of each rule set, in each process; compiled on first use.

Published versions never change. Which version is active per key is refreshed by one small
query every ``rule_set_refresh_seconds`` (a background task), and updated at once in the
process that performs an activation, when its transaction commits; every other process sees an
activation within that interval. A refresh whose query ran before a local activation was
applied is discarded rather than allowed to undo it.

What the cache remembers of each active version is its identity (``VersionIdentity``), not its
compiled form, so that start-up time and memory do not grow with the number of tenants. The
shared rule sets' active versions (the default one that readiness checks among them) are
compiled by every refresh, start-up included, and held here; a tenant's own active version is
compiled when one of its requests first needs it, into the bounded ``CompiledVersions``, and
again after that evicted it. Every compilation runs in a worker thread (the refresh's included),
so requests of other tenants never wait on it. Requests read no rule-set content from the
database, except to compile a version whose content this process has not compiled (or no longer
holds).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine import CompiledRuleSet
from app.kernel.tenancy import SHARED
from app.rulesets.compiled import COMPILED, CompiledVersions
from app.rulesets.deciding import DecidingVersion, VersionIdentity
from app.rulesets.models import RuleSetVersion
from app.rulesets.repository import RuleSetRepository

logger = logging.getLogger("carelevel.rulesets")


class RuleSetCache:
    def __init__(self, compiled: CompiledVersions = COMPILED) -> None:
        self.compiled = compiled
        self._active: dict[tuple[str, str], VersionIdentity] = {}
        # The shared rule sets' active versions, compiled: held here, so never evicted.
        self._held: dict[tuple[str, str], DecidingVersion] = {}
        self._generation = 0  # bumped by every local activation
        self.refreshed_at: float | None = None  # monotonic time of the last refresh

    def compile(self, row: RuleSetVersion) -> CompiledRuleSet:
        """The compiled form of a stored version (its content compiled once per process).
        Raises ``RuleSetError``."""
        return self.compiled.compile(row.content, row.sha256, str(row.version))

    def known(self, owner: str, key: str) -> VersionIdentity | None:
        """The active version of ``owner``'s rule set ``key``, compiled here or not."""
        return self._active.get((owner, key))

    def ready(self, version: VersionIdentity) -> DecidingVersion | None:
        """``version`` as it decides, if its compiled form is in this process (no compiling)."""
        held = self._held.get((version.owner, version.key))
        if held is not None and held.id == version.id:
            return held
        compiled = self.compiled.get(version.sha256, str(version.version))
        return None if compiled is None else version.deciding(compiled)

    def active(self, owner: str, key: str) -> DecidingVersion | None:
        """The active version of ``owner``'s rule set ``key`` if it is compiled here."""
        found = self._active.get((owner, key))
        return None if found is None else self.ready(found)

    async def deciding(self, session: AsyncSession, version: VersionIdentity) -> DecidingVersion:
        """``version`` as it decides, compiled (in a worker thread) if it is not yet. Raises
        ``LookupError`` if the version no longer exists."""
        found = self.ready(version)
        if found is not None:
            return found
        row = await RuleSetRepository(session).version_by_id(version.id)
        if row is None:
            raise LookupError(version.id)
        compiled = await self.compiled.compile_off_loop(row.content, row.sha256, str(row.version))
        return version.deciding(compiled)

    def active_versions(self) -> dict[tuple[str, str], VersionIdentity]:
        """Every active version this process knows, by (owner, key)."""
        return dict(self._active)

    def active_keys(self, owners: tuple[str, ...]) -> list[str]:
        """The keys of the rule sets of ``owners`` with an active version, sorted."""
        return sorted({key for owner, key in self._active if owner in owners})

    def set_active(self, version: DecidingVersion) -> None:
        """Record a committed activation made by this process."""
        where = (version.owner, version.key)
        self._active = {**self._active, where: version.identity()}
        if version.owner == SHARED:
            self._held = {**self._held, where: version}
        self._generation += 1

    def clear(self) -> None:
        """Forget every active version (after the database was restored or emptied); a
        refresh already under way is dropped, the next one reloads them."""
        self._active = {}
        self._held = {}
        self._generation += 1

    async def refresh(self, session: AsyncSession) -> None:
        """Re-read which versions are active; compile the shared ones this process has not.

        If this process activated a version while the query (or a compilation) ran, the result
        may predate that activation and is dropped; the next refresh reads the committed state.
        """
        generation = self._generation
        active: dict[tuple[str, str], VersionIdentity] = {}
        held: dict[tuple[str, str], DecidingVersion] = {}
        for owner, key, number, version_id, sha256 in await RuleSetRepository(
            session
        ).active_versions():
            version = VersionIdentity(version_id, owner, key, number, sha256)
            if owner == SHARED:
                try:
                    held[(owner, key)] = await self.deciding(session, version)
                except LookupError:  # pragma: no cover - deleted since the query (drafts only)
                    continue
            active[(owner, key)] = version
        if generation == self._generation:
            self._active, self._held = active, held
        self.refreshed_at = time.monotonic()

    def recently_refreshed(self, within: float) -> bool:
        """Whether a refresh ran less than ``within`` seconds ago."""
        return self.refreshed_at is not None and time.monotonic() - self.refreshed_at < within


async def refresh_forever(
    cache: RuleSetCache,
    sessions: async_sessionmaker[AsyncSession],
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Keep the cache's view of active versions fresh until cancelled."""
    while True:
        await sleep(interval)
        try:
            async with sessions() as session:
                await cache.refresh(session)
        except Exception as error:  # keep serving the last known versions
            logger.warning("rule-set refresh failed: %s", type(error).__name__)
