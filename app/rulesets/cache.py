"""Compiled rule sets, cached per version in each process.

Published versions never change, so a compiled version is cached for the life of the process.
Which version is active per key is refreshed by one small query every
``rule_set_refresh_seconds`` (a background task), and updated at once in the process that
performs an activation, when its transaction commits; every other process sees an activation
within that interval. A refresh whose query ran before a local activation was applied is
discarded rather than allowed to undo it. Requests never read rule-set content from the
database, except once to compile a pinned version that this process has not seen yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine import CompiledRuleSet, compile_rule_set
from app.rulesets.models import RuleSetVersion
from app.rulesets.repository import RuleSetRepository

logger = logging.getLogger("carelevel.rulesets")


@dataclass(frozen=True, slots=True)
class VersionRef:
    id: str
    owner: str  # "shared" or a tenant
    key: str
    version: int


# Compiled versions by (sha256, version label): identical content compiles identically, so
# every cache in the process (one per application instance) shares the work.
_COMPILED_BY_CONTENT: dict[tuple[str, str], CompiledRuleSet] = {}
_SHARED_LIMIT = 256


def compile_stored(content: dict[str, object], sha256: str, version: int) -> CompiledRuleSet:
    """Compile stored content once per process for each (sha256, version)."""
    key = (sha256, str(version))
    compiled = _COMPILED_BY_CONTENT.get(key)
    if compiled is None:
        compiled = compile_rule_set(content, version=str(version))
        if compiled.ref.sha256 == sha256 and len(_COMPILED_BY_CONTENT) < _SHARED_LIMIT:
            _COMPILED_BY_CONTENT[key] = compiled
    return compiled


class RuleSetCache:
    def __init__(self) -> None:
        self._compiled: dict[str, CompiledRuleSet] = {}
        self._active: dict[tuple[str, str], VersionRef] = {}
        self._generation = 0  # bumped by every local activation
        self.refreshed_at: float | None = None  # monotonic time of the last refresh

    def compiled(self, row: RuleSetVersion) -> CompiledRuleSet:
        """The compiled form of a stored version (compiled once, then cached)."""
        cached = self._compiled.get(row.id)
        if cached is None or cached.ref.sha256 != row.sha256:
            cached = compile_stored(row.content, row.sha256, row.version)
            if row.status != "draft":  # drafts change; only immutable versions are kept
                self._compiled[row.id] = cached
        return cached

    def cached(self, version_id: str) -> CompiledRuleSet | None:
        return self._compiled.get(version_id)

    def active(self, owner: str, key: str) -> VersionRef | None:
        return self._active.get((owner, key))

    def active_versions(self) -> dict[tuple[str, str], VersionRef]:
        """Every active version this process knows, by (owner, key)."""
        return dict(self._active)

    def active_keys(self, owners: tuple[str, ...]) -> list[str]:
        """The keys of the rule sets of ``owners`` with an active version, sorted."""
        return sorted({key for owner, key in self._active if owner in owners})

    def set_active(self, ref: VersionRef, compiled: CompiledRuleSet) -> None:
        """Record a committed activation made by this process."""
        self._compiled[ref.id] = compiled
        self._active = {**self._active, (ref.owner, ref.key): ref}
        self._generation += 1

    async def refresh(self, session: AsyncSession) -> None:
        """Re-read which versions are active; compile any this process has not seen.

        If this process activated a version while the query ran, the result may predate that
        activation and is dropped; the next refresh reads the committed state.
        """
        generation = self._generation
        repository = RuleSetRepository(session)
        active = {}
        for owner, key, version, version_id in await repository.active_versions():
            ref = VersionRef(version_id, owner, key, version)
            if version_id not in self._compiled:
                row = await repository.version_by_id(version_id)
                if row is None:
                    continue
                self._compiled[version_id] = compile_stored(row.content, row.sha256, version)
            active[(owner, key)] = ref
        if generation == self._generation:
            self._active = active
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
