"""Calendar months in UTC, the unit in which screenings and audit events are partitioned and
expire, and the span of time a row with a time-ordered id was stored in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

# How many months ahead partitions may be made (CARELEVEL_PARTITION_MONTHS_AHEAD, the command).
MONTHS_AHEAD_MAX = 24


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month in UTC: from its first instant (``start``) up to the next month's."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise ValueError(f"no such month: {self.year}-{self.month}")

    @classmethod
    def of(cls, instant: datetime) -> Month:
        """The month ``instant`` (timezone-aware) falls in, in UTC."""
        at = instant.astimezone(UTC)
        return cls(at.year, at.month)

    def plus(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the month: the next month's start."""
        return self.plus(1).start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_from(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, both included (none when ``last`` is earlier)."""
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    return [first.plus(offset) for offset in range(max(count, 0))]


_VERSION_7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST_MILLISECONDS = (datetime(9998, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)

# How far from its id's instant a row's own timestamp may be: the service takes both from the
# clock within the same request, microseconds apart; a day of margin costs at most one more
# partition read, and only for a row stored within a day of a month's end.
ID_CLOCK_MARGIN = timedelta(days=1)


def id_instant(row_id: str) -> datetime | None:
    """When a version 7 UUID (``app.kernel.ids.time_ordered_uuid``) was made, to the
    millisecond; None for any other text (a version 4 id of an older row, or no UUID at all)."""
    if not _VERSION_7.fullmatch(row_id):
        return None
    milliseconds = int(row_id[:8] + row_id[9:13], 16)
    if milliseconds >= _LATEST_MILLISECONDS:  # anyone may send any id: beyond dates, no time
        return None
    return _EPOCH + timedelta(milliseconds=milliseconds)


def stored_near_id(
    at_column: InstrumentedAttribute[datetime], row_id: str
) -> tuple[ColumnElement[bool], ...]:
    """Conditions on a row's timestamp (its table's partition key) that its time-ordered id
    implies, so that a look-up by id reads the one partition (two near a month's end) that can
    hold it instead of every partition; none for an id that tells no time."""
    at = id_instant(row_id)
    if at is None:
        return ()
    return (at_column >= at - ID_CLOCK_MARGIN, at_column < at + ID_CLOCK_MARGIN)
