"""Random identifiers are version 4 UUIDs in their canonical text form."""

from __future__ import annotations

import uuid

from app.kernel.ids import random_uuid


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
