"""Opaque cursors for keyset pagination over (timestamp, id)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from app.errors import BadRequest, FieldProblem, Unprocessable


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


def check_instant(name: str, value: datetime | None) -> None:
    """A query-string instant must carry a time zone and be in range (422 naming it)."""
    if value is None:
        return
    if value.tzinfo is None:
        raise Unprocessable(
            f"{name} needs a time zone (for example 2026-11-26T00:00:00Z).",
            errors=[FieldProblem(pointer=f"#/query/{name}", detail="must include a time zone")],
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise Unprocessable(
            f"{name} is out of range.",
            errors=[FieldProblem(pointer=f"#/query/{name}", detail="is out of range")],
        ) from None
