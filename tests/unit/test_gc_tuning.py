"""The server process's garbage collector: start-up frozen, a young threshold above one
request's peak, and cycles still collected without anyone calling ``gc.collect()``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.process.gc_tuning import YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


def test_start_up_objects_are_frozen_and_the_young_threshold_raised(
    restored_collector: None,
) -> None:
    _, middle, old = gc.get_threshold()
    loaded = Node()  # stands for what the application built at start-up
    settle_after_startup()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0
    assert not any(obj is loaded for obj in gc.get_objects()), "frozen objects are skipped"


def test_garbage_cycles_are_still_collected_by_the_collector_itself(
    restored_collector: None,
) -> None:
    settle_after_startup()
    first, second = Node(), Node()
    first.partner, second.partner = second, first
    gone = weakref.ref(first)
    del first, second  # a cycle: reference counting alone never frees it
    assert gone() is not None
    # Containers allocated past the threshold: the collector runs by itself.
    kept: list[list[int]] = [[] for _ in range(YOUNG_THRESHOLD * 2)]
    assert gone() is None
    assert len(kept) == YOUNG_THRESHOLD * 2
