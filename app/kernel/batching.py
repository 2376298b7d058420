"""Pure work of concurrent requests, run back to back once the event loop's turn is over.

Under load, one turn of the event loop starts or resumes many requests. Run between each
request's own parsing, authentication and response writing, an evaluation finds the
processor's caches filled with other code and costs half as much again as the same
evaluation in a loop. ``TurnBatch.run(work)`` queues ``work`` (a function without I/O) and
waits: at the end of the turn every queued function runs, one after the other, and each waiting
request resumes with its own result (or exception). A request alone waits one turn, which is
microseconds; docs/performance.md gives what it saves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


class TurnBatch:
    def __init__(self) -> None:
        self._queued: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def run(self, work: Callable[[], Result]) -> Result:
        """``work()``, run with the other work queued in this turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._run_queued)
        self._queued.append((work, future))
        return await future

    def _run_queued(self) -> None:
        queued, self._queued = self._queued, []
        for work, future in queued:
            if future.cancelled():  # its request was cancelled while it waited
                continue
            try:
                future.set_result(work())
            except Exception as error:
                future.set_exception(error)
