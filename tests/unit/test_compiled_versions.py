"""The service's one compile cache: compiled rule sets by content hash, bounded."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from app.engine import (
    CompiledRuleSet,
    ScreeningAnswers,
    compile_rule_set,
    default_rule_set,
    determination_to_json,
    document_sha256,
    evaluate,
    parse_document,
)
from app.rulesets.compiled import CompiledVersions, estimated_bytes

EXAMPLES = Path(__file__).parents[2] / "examples"


def shipped() -> tuple[dict[str, Any], str]:
    """The shipped default rule set's content, as a stored version holds it, and its sha256."""
    compiled = default_rule_set()
    return compiled.document.model_dump(mode="json"), compiled.ref.sha256


def retitled(title: str) -> tuple[dict[str, Any], str]:
    """Other content: the shipped rule set under another title."""
    content = shipped()[0] | {"title": title}
    return content, document_sha256(parse_document(content))


def test_versions_with_identical_content_compile_once() -> None:
    content, sha = shipped()
    cache = CompiledVersions()

    one = cache.compile(content, sha, "1")
    two = cache.compile(content, sha, "2")
    again = cache.compile(content, sha, "2")

    assert cache.compilations == 1
    assert (one.version, two.version) == ("1", "2")
    assert one.ref.sha256 == two.ref.sha256 == sha
    assert two.safety is one.safety  # the compiled rules are shared, not compiled again
    assert again is two


def test_a_version_evaluates_as_if_compiled_under_its_own_number() -> None:
    content, sha = shipped()
    answers = ScreeningAnswers.model_validate(
        json.loads((EXAMPLES / "adult-iop-with-barriers.json").read_text())
    )
    cache = CompiledVersions()
    cache.compile(content, sha, "1")

    shared = cache.compile(content, sha, "7")
    own = compile_rule_set(content, version="7")

    assert determination_to_json(evaluate(shared, answers)) == determination_to_json(
        evaluate(own, answers)
    )


def test_the_cache_is_bounded_and_forgets_the_least_recently_used_content() -> None:
    (a, sha_a), (b, sha_b), (c, sha_c) = (retitled(t) for t in ("A", "B", "C"))
    one = estimated_bytes(compile_rule_set(a, version="1"))
    cache = CompiledVersions(budget_bytes=int(2.5 * one))  # room for two, not three
    cache.compile(a, sha_a, "1")
    cache.compile(b, sha_b, "1")
    assert cache.get(sha_a, "3") is not None  # used again: b is now the oldest

    cache.compile(c, sha_c, "1")

    assert len(cache) == 2
    assert cache.get(sha_b, "1") is None
    assert cache.get(sha_a, "1") is not None
    assert cache.get(sha_c, "1") is not None
    cache.compile(b, sha_b, "1")
    assert cache.compilations == 4
    assert len(cache) == 2


def test_content_that_does_not_hash_to_the_stored_sha256_is_never_kept() -> None:
    content, _ = shipped()
    cache = CompiledVersions()

    compiled = cache.compile(content, "0" * 64, "1")
    cache.compile(content, "0" * 64, "1")

    assert compiled.version == "1"
    assert len(cache) == 0
    assert cache.compilations == 2


def test_the_shipped_rule_set_seeds_the_cache_without_a_compilation() -> None:
    content, sha = shipped()
    cache = CompiledVersions()

    cache.add(default_rule_set())
    compiled = cache.compile(content, sha, "1")

    assert cache.compilations == 0
    assert compiled.version == "1"
    assert compiled.document == default_rule_set().document


async def test_compiling_off_the_loop_runs_the_compiler_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content, sha = retitled("Elsewhere")
    cache = CompiledVersions()
    compiled_in: list[int] = []

    def recording(source: Any, *, version: str) -> CompiledRuleSet:
        compiled_in.append(threading.get_ident())
        return compile_rule_set(source, version=version)

    monkeypatch.setattr("app.rulesets.compiled.compile_rule_set", recording)
    compiled = await cache.compile_off_loop(content, sha, "4")
    again = await cache.compile_off_loop(content, sha, "4")

    assert len(compiled_in) == 1
    assert compiled_in[0] != threading.get_ident()  # not the event loop's thread
    assert again is compiled
    assert (compiled.version, compiled.ref.sha256) == ("4", sha)
    assert cache.compilations == 1


def test_shrinking_the_budget_forgets_the_least_recently_used_contents_at_once() -> None:
    cache = CompiledVersions()
    (a, sha_a), (b, sha_b), (c, sha_c) = (retitled(t) for t in ("A", "B", "C"))
    for content, sha in ((a, sha_a), (b, sha_b), (c, sha_c)):
        cache.compile(content, sha, "1")
    held = cache.held_bytes

    cache.resize(held // 2)  # room for one of the three

    assert len(cache) == 1
    assert cache.held_bytes <= held // 2
    assert cache.get(sha_c, "1") is not None


def test_the_size_estimate_is_close_to_what_compiling_allocates() -> None:
    content, _ = retitled("Measured")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        compiled = compile_rule_set(content, version="1")
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0.8 * allocated <= estimated_bytes(compiled) <= 1.5 * allocated


def test_a_content_over_the_whole_budget_is_still_kept_alone() -> None:
    cache = CompiledVersions(budget_bytes=1)
    (a, sha_a), (b, sha_b) = (retitled(t) for t in ("A", "B"))
    cache.compile(a, sha_a, "1")
    cache.compile(b, sha_b, "1")
    assert len(cache) == 1
    assert cache.get(sha_b, "1") is not None
