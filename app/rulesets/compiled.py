"""Compiled rule-set versions, cached by content: the one compile cache of the service.

Compiling is a function of a document's content, identified by its sha256. The only thing a
stored version adds is its label (the version number, which the compiled form carries in its
``ref`` and determinations report), so a content is compiled once and each label gets a copy
that differs in ``ref`` alone; versions with identical content, a fork of a shared version for
instance, share one compilation. The cache is bounded (least recently used contents go first,
``compiled_rule_sets_max``): a tenant's active version that was evicted is compiled again when
the tenant next needs it. Only the shared rule sets' active versions are also held by
``RuleSetCache``, so the shared default is never evicted while it is active.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from app.engine import CompiledRuleSet, compile_rule_set
from app.engine.determination import RuleSetRef
from app.engine.ruleset import RuleSetDocument

# Contents. A compiled copy of the shipped rule set takes about 0.35 MB (tracemalloc), one with
# many more rules proportionally more: 64 of them, a few tens of megabytes.
DEFAULT_LIMIT = 64
LABELS_PER_CONTENT = 16  # labelled copies kept per content; further ones are made on demand


def relabelled(compiled: CompiledRuleSet, label: str) -> CompiledRuleSet:
    """``compiled`` reporting ``label`` as its version (everything else shared)."""
    if compiled.ref.version == label:
        return compiled
    ref = RuleSetRef(compiled.ref.key, label, compiled.ref.sha256)
    return dataclasses.replace(compiled, ref=ref)


class CompiledVersions:
    """Compiled rule sets by content hash (sha256), each under the labels it was asked for."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.compilations = 0  # how many times this cache ran the compiler
        self._by_content: OrderedDict[str, dict[str, CompiledRuleSet]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_content)

    def get(self, sha256: str, label: str) -> CompiledRuleSet | None:
        """The compiled content ``sha256`` labelled ``label``, if this content is cached."""
        labels = self._by_content.get(sha256)
        if labels is None:
            return None
        self._by_content.move_to_end(sha256)
        compiled = labels.get(label)
        if compiled is None:
            compiled = relabelled(next(iter(labels.values())), label)
            if len(labels) < LABELS_PER_CONTENT:
                labels[label] = compiled
        return compiled

    def compile(
        self, content: RuleSetDocument | Mapping[str, Any], sha256: str, label: str
    ) -> CompiledRuleSet:
        """The compiled form of ``content`` (whose sha256 is ``sha256``) labelled ``label``:
        compiled only when this content is not cached. Raises ``RuleSetError``.

        Kept only when the content really hashes to ``sha256``: a stored row whose hash does
        not match its content must never stand for the content it names.
        """
        compiled = self.get(sha256, label)
        if compiled is None:
            compiled = self._kept(compile_rule_set(content, version=label), sha256)
        return compiled

    async def compile_off_loop(
        self, content: RuleSetDocument | Mapping[str, Any], sha256: str, label: str
    ) -> CompiledRuleSet:
        """``compile``, with the compiler run in a worker thread so that the event loop keeps
        serving other requests meanwhile (the cache itself is only touched on the loop)."""
        compiled = self.get(sha256, label)
        if compiled is None:
            fresh = await asyncio.to_thread(compile_rule_set, content, version=label)
            compiled = self._kept(fresh, sha256)
        return compiled

    def _kept(self, compiled: CompiledRuleSet, sha256: str) -> CompiledRuleSet:
        self.compilations += 1
        if compiled.ref.sha256 == sha256:
            self.add(compiled)
        return compiled

    def resize(self, limit: int) -> None:
        """Keep at most ``limit`` contents from now on (the least recently used go first)."""
        self.limit = limit
        self._evict()

    def add(self, compiled: CompiledRuleSet) -> None:
        """Keep a compiled rule set under its own content hash and label (the shipped default,
        compiled by the engine once per process, seeds the cache this way)."""
        labels = self._by_content.setdefault(compiled.ref.sha256, {})
        self._by_content.move_to_end(compiled.ref.sha256)
        labels.setdefault(compiled.ref.version, compiled)
        self._evict()

    def _evict(self) -> None:
        while len(self._by_content) > self.limit:
            self._by_content.popitem(last=False)


COMPILED = CompiledVersions()
"""The process's cache: every application instance of the process shares it (compiling is
a function of the content alone)."""
