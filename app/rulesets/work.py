"""CPU-heavy rule-set work in worker processes, a few at a time per tenant.

Checking a new or edited draft (parsing and compiling it), validating a version (its test
cases), diffing two, re-evaluating stored screenings for a simulation and exporting YAML take
from milliseconds to seconds for a large rule set. Run on
the event loop, they stalled every other request of the process; in a thread, they still took
the interpreter lock from it in turns. Here they run in a pool of worker processes
(``concurrent.futures.ProcessPoolExecutor``, started with ``spawn``: a clean interpreter, no
copy of the server's threads and connections), so another tenant's requests keep their core.

What crosses to a worker is plain data: a version's document (``StoredDocument``) and, for a
simulation, the sampled screenings' answers. A worker compiles what it needs into its own
process-wide cache (``COMPILED``) and keeps its validation reports (``reports._REPORTS``), so
validating the shipped document again costs nothing.

Each tenant may have ``per_tenant`` operations running or waiting in this process; one more
is refused with 429 and Retry-After before any work is queued. A request stopped at its
deadline cancels its work if it has not started; work already running finishes in the worker
(a process cannot be interrupted safely) and only then frees the tenant's slot.

The pool is one per server process, shared by every application instance in it, like the
compile cache; its worker processes start on first use (about 0.9 s and 75-80 MB each, measured
with the shipped rule set). A worker that dies (killed for memory, say) fails the operations it
held with 503, and the next operation starts a new pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from app.engine import RuleSetError, document_sha256, parse_document
from app.engine.compiler import CompiledRuleSet, RuleSetProblem
from app.engine.determination import CURRENT_SEMANTICS
from app.engine.ruleset import RuleSetDocument
from app.kernel.errors import ServiceUnavailable, TooManyRequests
from app.rulesets.compiled import COMPILED
from app.rulesets.models import RuleSetVersion
from app.rulesets.reports import (
    SimulationChanges,
    export_yaml,
    re_evaluation,
    validation_report,
    version_diff,
)
from app.rulesets.schemas import ValidationReport, VersionDiff

P = ParamSpec("P")
T = TypeVar("T")

# Seconds a client refused for a tenant's full slots is asked to wait.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What a worker needs of a stored version: its identity and its document."""

    owner: str
    key: str
    version: int
    sha256: str
    content: dict[str, Any]

    @classmethod
    def of(cls, row: RuleSetVersion) -> StoredDocument:
        return cls(row.owner, row.key, row.version, row.sha256, dict(row.content))


_OLD_SEMANTICS = RuleSetProblem(
    None,
    "semantics",
    f"new versions are evaluated with semantics {CURRENT_SEMANTICS}: declare "
    f"'semantics: {CURRENT_SEMANTICS}', then check the document's cases with the rules of "
    "docs/rule-sets.md (the most severe safety override decides, an open safety question "
    "withholds the IOP verdict, safety rules read evidence, not the presenting concerns; "
    "consistency rules and context answers may be added); earlier semantics are kept only "
    "to replay the versions published with them",
)


def draft(source: str | bytes | Mapping[str, Any]) -> tuple[RuleSetDocument, str]:
    """In a worker: a new or edited draft's document parsed and compiled, and its sha256;
    RuleSetError when it does not compile or declares an earlier ``semantics``."""
    document = parse_document(source)
    if document.semantics < CURRENT_SEMANTICS:
        raise RuleSetError([_OLD_SEMANTICS])
    sha = document_sha256(document)
    COMPILED.compile(document, sha, document.version)
    return document, sha


def _compiled(document: StoredDocument) -> CompiledRuleSet:
    """In a worker: ``document`` compiled, from the worker's cache when it was seen before."""
    return COMPILED.compile(document.content, document.sha256, str(document.version))


def report(document: StoredDocument) -> ValidationReport:
    """In a worker: the validation report of ``document``."""
    return validation_report(document, lambda stored: _compiled(document))


def diff(key: str, before: StoredDocument, after: StoredDocument) -> VersionDiff:
    """In a worker: how ``after`` differs from ``before`` (RuleSetError if one does not
    compile)."""
    return version_diff(key, before, _compiled(before), after, _compiled(after))


def simulation(document: StoredDocument, screenings: Sequence[Any]) -> SimulationChanges:
    """In a worker: the stored ``screenings`` re-evaluated under ``document``."""
    return re_evaluation(_compiled(document), screenings)


def export(document: StoredDocument) -> str:
    """In a worker: ``document`` as YAML."""
    return export_yaml(document)


class RuleSetWork:
    """The worker processes of this server process and each tenant's share of them."""

    def __init__(self, processes: int = 1, per_tenant: int = 2) -> None:
        self.processes = processes
        self.per_tenant = per_tenant
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[str, int] = {}

    def configure(self, processes: int, per_tenant: int) -> None:
        """Use ``processes`` worker processes from now on (the pool is replaced if it runs
        with another number) and allow each tenant ``per_tenant`` operations at once."""
        self.per_tenant = per_tenant
        if processes != self.processes:
            self.processes = processes
            self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker processes (a later operation starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, tenant: str, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args)`` in a worker process, counted against ``tenant``'s operations (429
        when they are all taken)."""
        running = self._running.get(tenant, 0)
        if running >= self.per_tenant:
            raise TooManyRequests(
                f"This tenant already has {running} rule-set operations (draft checks, "
                f"validations, diffs, simulations, exports) under way; retry in "
                f"{RETRY_AFTER_SECONDS} s.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        loop = asyncio.get_running_loop()
        submitted: Future[T] = self._workers().submit(work, *args, **kwargs)
        self._running[tenant] = running + 1

        def ended(_: Future[T]) -> None:
            # Freed when the work ends in the worker, not when the request stops waiting.
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(self._done, tenant)

        submitted.add_done_callback(ended)
        try:
            return await asyncio.wrap_future(submitted)
        except BrokenProcessPool:
            # A worker died (killed for memory, say): the next operation starts a new pool.
            self.shutdown()
            raise ServiceUnavailable(
                "The rule-set worker stopped unexpectedly; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None

    def _done(self, tenant: str) -> None:
        left = self._running.get(tenant, 1) - 1
        if left > 0:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool


RULE_SET_WORK = RuleSetWork()
"""The process's worker pool (every application instance of the process shares it)."""
