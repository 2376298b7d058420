"""The identity of the rule-set version that decides a screening."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.engine import CompiledRuleSet
from app.security.actions import version_resource_id


@dataclass(frozen=True, slots=True)
class VersionIdentity:
    """A stored, published version without its compiled form: what each process remembers of
    every active version (compiled forms are kept apart, in a bounded cache), and what a pinned
    version is known by until it is compiled."""

    id: str
    owner: str  # "shared" or a tenant
    key: str
    version: int
    sha256: str

    def deciding(self, compiled: CompiledRuleSet) -> DecidingVersion:
        return DecidingVersion(self.id, self.owner, self.key, self.version, compiled)


@dataclass(frozen=True, slots=True)
class DecidingVersion:
    """A stored, published version that decides (or replays) screenings, with its compiled
    form: what a screening records as the version that decided it."""

    id: str
    owner: str  # "shared" or a tenant
    key: str
    version: int
    compiled: CompiledRuleSet

    @property
    def sha256(self) -> str:
        return self.compiled.ref.sha256

    @property
    def engine_version(self) -> str:
        return self.compiled.engine_version

    @property
    def name(self) -> str:
        """``owner/key/version``, as audit events name a version."""
        return version_resource_id(self.owner, self.key, self.version)

    def rule_set_used(self) -> dict[str, Any]:
        return rule_set_used(self.owner, self.key, self.version, self.sha256)

    def identity(self) -> VersionIdentity:
        """This version without its compiled form."""
        return VersionIdentity(self.id, self.owner, self.key, self.version, self.sha256)


def rule_set_used(owner: str, key: str, version: int, sha256: str) -> dict[str, Any]:
    """The ``rule_set`` of a response: the version that decided (a stored screening keeps
    these four values in its own columns)."""
    return {"owner": owner, "key": key, "version": version, "sha256": sha256}
