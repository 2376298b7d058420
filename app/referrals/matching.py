"""The one way from a screening to the pure matcher (app/engine/matching.py), for matches,
referrals and the CDS cards alike.

Judging a directory of up to a thousand programs on thirteen criteria each is CPU work: it
runs in a worker thread, never on the event loop, and with no database session open (the
callers read what they need first, then match).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from app.engine.matching import Needs, Preferences, needs_for

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Screened:
    """What the matcher reads of a screening: its determination and answers (as JSON), and the
    level a clinician decided (the latest decision's final level; None: none decided)."""

    determination: Mapping[str, Any]
    answers: Mapping[str, Any]
    decided_level: str | None = None


async def matched(screened: Screened, preferences: Preferences, render: Callable[[Needs], T]) -> T:
    """``render`` (a ranking, one program's judgement, a card's offer) of the person's needs,
    both computed in a worker thread."""

    def work() -> T:
        needs = needs_for(
            screened.determination,
            screened.answers,
            preferences,
            decided_level=screened.decided_level,
        )
        return render(needs)

    return await asyncio.to_thread(work)
