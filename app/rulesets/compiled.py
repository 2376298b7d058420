"""Compiled rule-set versions, cached by content: the one compile cache of the service.

Compiling is a function of a document's content, identified by its sha256. The only thing a
stored version adds is its label (the version number, which the compiled form carries in its
``ref`` and determinations report), so a content is compiled once and each label gets a copy
that differs in ``ref`` alone; versions with identical content, a fork of a shared version for
instance, share one compilation. The cache has a memory budget (least recently used contents go
first, ``compiled_rule_sets_memory_mb``): each compiled content's size is estimated once, as it
is compiled, by walking what it holds (``estimated_bytes``; within 10 % of what ``tracemalloc``
sees for the shipped rule set, about 1.1 MB); a tenant's active version that was evicted is
compiled again when the tenant next needs it. Only the shared rule sets' active versions are
also held by ``RuleSetCache``, so the shared default is never evicted while it is active.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sys
from collections import OrderedDict
from collections.abc import Mapping
from types import CodeType, FunctionType, ModuleType
from typing import Any

from app.engine import CompiledRuleSet, compile_rule_set
from app.engine.determination import RuleSetRef
from app.engine.ruleset import RuleSetDocument

# Bytes. A compiled copy of the shipped rule set takes about 1.1 MB, one with many more rules
# proportionally more.
DEFAULT_BUDGET = 64 * 1024 * 1024
LABELS_PER_CONTENT = 16  # labelled copies kept per content; further ones are made on demand


def relabelled(compiled: CompiledRuleSet, label: str) -> CompiledRuleSet:
    """``compiled`` reporting ``label`` as its version (everything else shared)."""
    if compiled.ref.version == label:
        return compiled
    ref = RuleSetRef(compiled.ref.key, label, compiled.ref.sha256)
    return dataclasses.replace(compiled, ref=ref)


def estimated_bytes(root: object) -> int:
    """The memory ``root`` holds: every object it reaches, once (classes, modules and code
    excepted: they are shared by every compiled rule set); a function's closure and defaults,
    not its module's globals."""
    seen: set[int] = set()
    pending = [root]
    total = 0
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, type | ModuleType | CodeType):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, FunctionType):
            pending.extend(_closure(item))
        else:
            pending.extend(gc.get_referents(item))
    return total


def _closure(function: FunctionType) -> list[object]:
    held: list[object] = [*(function.__defaults__ or ()), function.__kwdefaults__ or {}]
    for cell in function.__closure__ or ():
        try:
            held.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            continue
    return held


def _compiled_and_sized(
    content: RuleSetDocument | Mapping[str, Any], label: str
) -> tuple[CompiledRuleSet, int]:
    compiled = compile_rule_set(content, version=label)
    return compiled, estimated_bytes(compiled)


class CompiledVersions:
    """Compiled rule sets by content hash (sha256), each under the labels it was asked for."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET) -> None:
        self.budget_bytes = budget_bytes
        self.compilations = 0  # how many times this cache ran the compiler
        self._by_content: OrderedDict[str, dict[str, CompiledRuleSet]] = OrderedDict()
        self._sizes: dict[str, int] = {}  # estimated bytes, by content

    @property
    def held_bytes(self) -> int:
        """The estimated memory of the contents kept (each counted once, whatever its labels:
        labelled copies share everything but their ``ref``)."""
        return sum(self._sizes.values())

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
            compiled = self._kept(*_compiled_and_sized(content, label), sha256)
        return compiled

    async def compile_off_loop(
        self, content: RuleSetDocument | Mapping[str, Any], sha256: str, label: str
    ) -> CompiledRuleSet:
        """``compile``, with the compiler run in a worker thread so that the event loop keeps
        serving other requests meanwhile (the cache itself is only touched on the loop)."""
        compiled = self.get(sha256, label)
        if compiled is None:
            fresh, size = await asyncio.to_thread(_compiled_and_sized, content, label)
            compiled = self._kept(fresh, size, sha256)
        return compiled

    def _kept(self, compiled: CompiledRuleSet, size: int, sha256: str) -> CompiledRuleSet:
        self.compilations += 1
        if compiled.ref.sha256 == sha256:
            self.add(compiled, size)
        return compiled

    def resize(self, budget_bytes: int) -> None:
        """Keep at most ``budget_bytes`` of compiled contents from now on (the least recently
        used go first)."""
        self.budget_bytes = budget_bytes
        self._evict()

    def add(self, compiled: CompiledRuleSet, size: int | None = None) -> None:
        """Keep a compiled rule set under its own content hash and label (the shipped default,
        compiled by the engine once per process, seeds the cache this way), with its estimated
        size (estimated here when not given)."""
        sha256 = compiled.ref.sha256
        labels = self._by_content.setdefault(sha256, {})
        self._by_content.move_to_end(sha256)
        labels.setdefault(compiled.ref.version, compiled)
        if sha256 not in self._sizes:
            self._sizes[sha256] = estimated_bytes(compiled) if size is None else size
        self._evict()

    def _evict(self) -> None:
        # The most recent content stays, even alone over the budget: it is about to be used.
        while self.held_bytes > self.budget_bytes and len(self._by_content) > 1:
            evicted, _ = self._by_content.popitem(last=False)
            del self._sizes[evicted]


COMPILED = CompiledVersions()
"""The process's cache: every application instance of the process shares it (compiling is
a function of the content alone)."""
