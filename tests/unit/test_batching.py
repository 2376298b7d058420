"""TurnBatch runs the work queued in one event-loop turn together, each result to its caller."""

from __future__ import annotations

import asyncio

import pytest

from app.kernel.batching import TurnBatch


async def test_work_queued_in_one_turn_runs_together_and_each_caller_gets_its_result() -> None:
    batch = TurnBatch()
    ran: list[tuple[int, int]] = []
    turn = 0

    def work(number: int) -> int:
        ran.append((number, turn))
        return number * 10

    async def caller(number: int) -> int:
        return await batch.run(lambda: work(number))

    tasks = [asyncio.create_task(caller(n)) for n in range(5)]
    results = await asyncio.gather(*tasks)
    assert results == [0, 10, 20, 30, 40]
    assert [number for number, _ in ran] == [0, 1, 2, 3, 4]  # in the order queued
    turn = 1
    assert await caller(7) == 70  # alone, it runs too
    assert ran[-1] == (7, 1)


async def test_an_exception_reaches_its_own_caller_only() -> None:
    batch = TurnBatch()

    def failing() -> int:
        raise ValueError("bad answers")

    outcomes = await asyncio.gather(
        batch.run(lambda: 1), batch.run(failing), batch.run(lambda: 3), return_exceptions=True
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 3


async def test_work_of_a_cancelled_caller_is_skipped() -> None:
    batch = TurnBatch()
    ran: list[str] = []

    def work(name: str) -> str:
        ran.append(name)
        return name

    async def caller(name: str) -> str:
        return await batch.run(lambda: work(name))

    cancelled = asyncio.create_task(caller("cancelled"))
    kept = asyncio.create_task(caller("kept"))
    await asyncio.sleep(0)  # both queued
    cancelled.cancel()
    assert await kept == "kept"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert ran == ["kept"]
