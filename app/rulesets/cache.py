"""The active version of each rule set, compiled, in each process.

Published versions never change. Which version is active per key is refreshed by one small
query every ``rule_set_refresh_seconds`` (a background task), and updated at once in the
process that performs an activation, when its transaction commits; every other process sees an
activation within that interval. A refresh whose query ran before a local activation was
applied is discarded rather than allowed to undo it. Requests never read rule-set content from
the database, except once to compile a pinned version whose content this process has not
compiled yet (``CompiledVersions``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine import CompiledRuleSet
from app.rulesets.compiled import COMPILED, CompiledVersions
from app.rulesets.deciding import DecidingVersion
from app.rulesets.models import RuleSetVersion
from app.rulesets.repository import RuleSetRepository

logger = logging.getLogger("carelevel.rulesets")


class RuleSetCache:
    def __init__(self, compiled: CompiledVersions = COMPILED) -> None:
        self.compiled = compiled
        self._active: dict[tuple[str, str], DecidingVersion] = {}
        self._generation = 0  # bumped by every local activation
        self.refreshed_at: float | None = None  # monotonic time of the last refresh

    def compile(self, row: RuleSetVersion) -> CompiledRuleSet:
        """The compiled form of a stored version (its content compiled once per process).
        Raises ``RuleSetError``."""
        return self.compiled.compile(row.content, row.sha256, str(row.version))

    def active(self, owner: str, key: str) -> DecidingVersion | None:
        return self._active.get((owner, key))

    def active_versions(self) -> dict[tuple[str, str], DecidingVersion]:
        """Every active version this process knows, by (owner, key)."""
        return dict(self._active)

    def active_keys(self, owners: tuple[str, ...]) -> list[str]:
        """The keys of the rule sets of ``owners`` with an active version, sorted."""
        return sorted({key for owner, key in self._active if owner in owners})

    def set_active(self, version: DecidingVersion) -> None:
        """Record a committed activation made by this process."""
        self._active = {**self._active, (version.owner, version.key): version}
        self._generation += 1

    def clear(self) -> None:
        """Forget every active version (after the database was restored or emptied); a
        refresh already under way is dropped, the next one reloads them."""
        self._active = {}
        self._generation += 1

    async def refresh(self, session: AsyncSession) -> None:
        """Re-read which versions are active; compile any content this process has not.

        If this process activated a version while the query ran, the result may predate that
        activation and is dropped; the next refresh reads the committed state.
        """
        generation = self._generation
        repository = RuleSetRepository(session)
        active = {}
        for owner, key, number, version_id, sha256 in await repository.active_versions():
            version = await self._deciding(repository, version_id, owner, key, number, sha256)
            if version is not None:
                active[(owner, key)] = version
        if generation == self._generation:
            self._active = active
        self.refreshed_at = time.monotonic()

    async def _deciding(
        self,
        repository: RuleSetRepository,
        version_id: str,
        owner: str,
        key: str,
        number: int,
        sha256: str,
    ) -> DecidingVersion | None:
        """An active version as it decides: its content read only when not compiled yet."""
        known = self._active.get((owner, key))
        if known is not None and known.id == version_id:
            return known
        compiled = self.compiled.get(sha256, str(number))
        if compiled is None:
            row = await repository.version_by_id(version_id)
            if row is None:
                return None
            compiled = self.compile(row)
        return DecidingVersion(version_id, owner, key, number, compiled)

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
