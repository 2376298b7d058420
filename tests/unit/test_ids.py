"""Identifiers are UUIDs in their canonical text form: random ones version 4, new rows' version 7
(time-ordered)."""

from __future__ import annotations

import time
import uuid

from app.kernel.db import new_id
from app.kernel.ids import random_uuid, time_ordered_uuid


def test_random_uuids_are_canonical_version_4_uuids() -> None:
    seen = {random_uuid() for _ in range(2000)}
    assert len(seen) == 2000
    for text in seen:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # every variant nibble (8, 9, a, b) occurs: the two free bits are random
    assert {text[19] for text in seen} == set("89ab")


def test_new_rows_get_time_ordered_version_7_uuids() -> None:
    """New rows' ids are version 7 UUIDs in the same text form, their order that of time."""
    first = time_ordered_uuid()
    issued = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 <= issued:  # wait for the next millisecond
        pass
    later = [time_ordered_uuid() for _ in range(2000)]
    assert len(set(later)) == 2000
    for text in (first, *later):
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    assert all(first < text for text in later)
    now_ms = time.time_ns() // 1_000_000
    assert 0 <= now_ms - int(later[-1].replace("-", "")[:12], 16) < 60_000
    assert new_id()[14] == "7"
