"""Keyset pagination: opaque cursors over (timestamp, id), and instants as filters."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Annotated

import orjson
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import ColumnElement, and_, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.kernel.errors import BadRequest


def after_row(
    at_column: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    after: tuple[datetime, str],
    *,
    newest_first: bool = True,
) -> ColumnElement[bool]:
    """Rows after the (timestamp, id) last seen, in (timestamp, id) order, newest or oldest
    first: the keyset condition of every list.

    Written as a row-value comparison, ``(at, id) < (:at, :id)``, which PostgreSQL (and SQLite)
    seek in a B-tree index on ``(tenant, …, at, id)``: a page costs the same at any depth. The
    equivalent OR form is read by the planner as a filter, and every row before the cursor
    would be read. The bound on the timestamp alone, which the row comparison implies, is what
    PostgreSQL prunes a table partitioned by month with: a deep page reads only the months at
    and before the cursor (after it, oldest first)."""
    row = tuple_(at_column, id_column)  # a plain tuple on the right takes the columns' types
    if newest_first:
        return and_(row < after, at_column <= after[0])
    return and_(row > after, at_column >= after[0])


def encode_cursor(at: datetime, row_id: str) -> str:
    raw = orjson.dumps([at.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, id) a cursor encodes; 400 for anything this API did not return."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(row_id, str) or "\x00" in row_id:
            raise ValueError("not a cursor")
        at.astimezone(UTC)  # out of range raises OverflowError
        return at, row_id
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise BadRequest("The cursor is not one this API returned.") from None


_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})")


def _written_as_iso_8601(value: object) -> object:
    # Pydantic would also read "1764547200" or "0.5" as a Unix time; a filter is an instant
    # written out, with its zone, or nothing.
    if isinstance(value, str) and not _ISO_8601.fullmatch(value):
        raise PydanticCustomError(
            "instant_format",
            "must be an ISO 8601 date and time with a time zone, for example 2026-11-26T00:00:00Z",
        )
    return value


def _in_range(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("instant_range", "is out of range") from None
    return value


Instant = Annotated[
    datetime,
    BeforeValidator(_written_as_iso_8601),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _ISO_8601.pattern}),
]
"""A query-string instant: ISO 8601 with its time zone (422 naming the parameter otherwise)."""
