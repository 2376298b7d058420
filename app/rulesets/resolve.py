"""Which stored version decides a tenant's screening: the pinned one, or the active version of
the key, the tenant's own before the shared one.

The active version comes from the in-process cache: no database read per request once this
process has compiled it (``resolve_cached`` answers without a session); a tenant's active
version is compiled by the first request that needs it (one read of its content, compiled in a
worker thread) and again after the bounded compile cache evicted it. A pinned version costs one
small query (its status can change) and never a read of its content while this process holds
that content compiled. Drafts never decide anything; retired versions decide no new screening
but still replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine import DEFAULT_RULE_SET_KEY
from app.kernel.errors import FieldProblem, Unprocessable
from app.kernel.tenancy import SHARED
from app.rulesets.cache import RuleSetCache
from app.rulesets.deciding import DecidingVersion, VersionIdentity
from app.rulesets.models import RuleSetVersion, VersionStatus
from app.rulesets.repository import RuleSetRepository


class Pin(Protocol):
    """What a request may say about the version that decides it (``RuleSetPin``)."""

    @property
    def owner(self) -> str | None: ...

    @property
    def key(self) -> str: ...

    @property
    def version(self) -> int | None: ...


def _refused(detail: str, pointer: str, problem: str) -> Unprocessable:
    return Unprocessable(detail, errors=[FieldProblem(pointer=pointer, detail=problem)])


def _no_version(owner: str, key: str, number: int, pointer: str) -> Unprocessable:
    detail = f"Rule set '{owner}/{key}' has no version {number}."
    return _refused(detail, pointer, "no such version")


def _pinned_status_problem(status: str, allow_retired: bool, pointer: str) -> Unprocessable | None:
    if status == VersionStatus.DRAFT:
        return _refused(
            "Screenings are decided by published versions only; this version is a draft.",
            pointer,
            "is a draft",
        )
    if status == VersionStatus.RETIRED and not allow_retired:
        return _refused(
            "This version is retired: it decides no new screenings (replays still work).",
            pointer,
            "is retired",
        )
    return None


class RuleSets:
    """The versions that decide screenings, for the packages that evaluate them (screenings,
    FHIR, CDS Hooks through FHIR)."""

    def __init__(self, cache: RuleSetCache, operator_tenant: str) -> None:
        self.cache = cache
        self.operator_tenant = operator_tenant

    def resolve_cached(self, tenant: str, pin: Pin | None) -> DecidingVersion | None:
        """What ``resolve`` answers when it needs no database: the active version of the key,
        compiled in this process (the common case, and what nearly every request asks for).
        None otherwise (a pinned version, an owner to check, a key not seen active yet, an
        active version not compiled here yet): ``resolve`` then decides."""
        if pin is None:
            owners: tuple[str, ...] = (tenant, SHARED)
            key = DEFAULT_RULE_SET_KEY
        elif pin.version is not None:
            return None
        elif pin.owner is None:
            owners, key = (tenant, SHARED), pin.key
        elif pin.owner in (tenant, SHARED):
            owners, key = (pin.owner,), pin.key
        else:
            return None
        found = self._first_active(owners, key)
        return None if found is None else self.cache.ready(found)

    async def resolve(
        self,
        session: AsyncSession,
        tenant: str,
        pin: Pin | None,
        *,
        allow_retired: bool = False,
        pointer: str = "#/rule_set/version",
    ) -> DecidingVersion:
        """The version that decides for ``tenant`` (422 naming ``pointer``, or the pin's
        owner or key, when there is none). ``allow_retired``: a replay."""
        key = pin.key if pin else DEFAULT_RULE_SET_KEY
        if pin is not None and pin.owner is not None and pin.owner not in (tenant, SHARED):
            raise _refused(
                f"No rule set '{pin.owner}/{key}'.", "#/rule_set/owner", "no such rule set"
            )
        if pin is None or pin.version is None:
            owners = [pin.owner] if pin is not None and pin.owner else [tenant, SHARED]
            return await self._active(session, owners, key)
        return await self._pinned(
            session, tenant, pin.owner, key, pin.version, allow_retired, pointer
        )

    async def header(
        self, session: AsyncSession, version: DecidingVersion
    ) -> RuleSetVersion | None:
        """What describes a deciding version (title, status, dates), without its content."""
        return await RuleSetRepository(session).version_header(version.id)

    def active_keys(self, tenant: str) -> list[str]:
        """The keys of the rule sets with a version that decides ``tenant``'s screenings."""
        return self.cache.active_keys((SHARED, tenant))

    def _first_active(self, owners: Sequence[str], key: str) -> VersionIdentity | None:
        """The active version of the first of ``owners`` that has one (a tenant's own before
        the shared one), compiled here or not."""
        for owner in owners:
            found = self.cache.known(owner, key)
            if found is not None:
                return found
        return None

    async def _active(self, session: AsyncSession, owners: list[str], key: str) -> DecidingVersion:
        found = self._first_active(owners, key)
        if found is None and not self.cache.recently_refreshed(1.0):
            # A key this process has not seen active yet: look once, but never more than once
            # a second, so requests naming unknown keys cannot turn into a query each.
            await self.cache.refresh(session)
            found = self._first_active(owners, key)
        if found is not None:
            with contextlib.suppress(LookupError):  # replaced since the last refresh
                return await self.cache.deciding(session, found)
        raise _refused(
            f"Rule set '{key}' has no active version.", "#/rule_set/key", "no active version"
        )

    async def _pinned(
        self,
        session: AsyncSession,
        tenant: str,
        owner: str | None,
        key: str,
        number: int,
        allow_retired: bool,
        pointer: str,
    ) -> DecidingVersion:
        repository = RuleSetRepository(session)
        if owner is None:
            owner = tenant if await repository.owns_rule_set(tenant, key) else SHARED
        found = await repository.version_status(owner, key, number)
        hidden = found is not None and found[1] == VersionStatus.DRAFT and owner == SHARED
        if found is None or (hidden and tenant != self.operator_tenant):
            # Drafts of shared rule sets are the operator tenant's work in progress.
            raise _no_version(owner, key, number, pointer)
        version_id, status, sha256 = found
        problem = _pinned_status_problem(status, allow_retired, pointer)
        if problem is not None:
            raise problem
        pinned = VersionIdentity(version_id, owner, key, number, sha256)
        try:
            return await self.cache.deciding(session, pinned)
        except LookupError:  # pragma: no cover - deleted between the two reads (drafts only)
            raise _no_version(owner, key, number, pointer) from None
