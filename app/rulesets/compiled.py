"""Compiled rule-set versions, cached by content: the one compile cache of the service.

Compiling is a function of a document's content, identified by its sha256. The only thing a
stored version adds is its label (the version number, which the compiled form carries in its
``ref`` and determinations report), so a content is compiled once and each label gets a copy
that differs in ``ref`` alone; versions with identical content, a fork of a shared version for
instance, share one compilation. The cache is bounded (least recently used contents go first);
what decides screenings stays reachable from the active versions (``RuleSetCache``) whether or
not it is still here.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from app.engine import CompiledRuleSet, compile_rule_set
from app.engine.determination import RuleSetRef
from app.engine.ruleset import RuleSetDocument

DEFAULT_LIMIT = 128  # contents; a compiled rule set takes a few megabytes at most
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
            self.compilations += 1
            compiled = compile_rule_set(content, version=label)
            if compiled.ref.sha256 == sha256:
                self.add(compiled)
        return compiled

    def add(self, compiled: CompiledRuleSet) -> None:
        """Keep a compiled rule set under its own content hash and label (the shipped default,
        compiled by the engine once per process, seeds the cache this way)."""
        labels = self._by_content.setdefault(compiled.ref.sha256, {})
        self._by_content.move_to_end(compiled.ref.sha256)
        labels.setdefault(compiled.ref.version, compiled)
        while len(self._by_content) > self.limit:
            self._by_content.popitem(last=False)


COMPILED = CompiledVersions()
"""The process's cache: every application instance of the process shares it (compiling is
a function of the content alone)."""
