"""Choosing the media type of a response from the request's ``Accept`` header (RFC 9110,
section 12.5.1): each offered type gets the quality of the most specific range that matches it
(``text/html`` before ``text/*`` before ``*/*``), and the best quality wins; between equals,
the type offered first, so the first offered is the default. No header, or an empty one,
accepts anything.

Pure, and remembered per header value: intake apps send the same few headers again and again,
so choosing costs a dictionary lookup on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

# (type, subtype, quality) of one media range of an Accept header.
_Range = tuple[str, str, float]


def accept_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Every ``Accept`` field of raw ASGI headers, combined as one list (None: there is none)."""
    values = [value.decode("latin-1") for name, value in headers if name == b"accept"]
    return ", ".join(values) if values else None


@lru_cache(maxsize=512)
def preferred(accept: str | None, offered: tuple[str, ...]) -> str | None:
    """The type of ``offered`` that ``accept`` prefers, or None when it accepts none of them."""
    ranges = _ranges(accept or "")
    if not ranges:
        return offered[0] if offered else None
    best, best_quality = None, 0.0
    for media_type in offered:
        quality = _quality(media_type, ranges)
        if quality > best_quality:
            best, best_quality = media_type, quality
    return best


def _ranges(accept: str) -> list[_Range]:
    """The media ranges of a header; a malformed one is left out, an invalid quality is 0."""
    ranges = []
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        kind, slash, subtype = media_range.lower().partition("/")
        if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
            continue
        ranges.append((kind, subtype, _quality_parameter(parameters)))
    return ranges


def _quality_parameter(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def _quality(media_type: str, ranges: list[_Range]) -> float:
    """The quality the most specific matching range gives ``media_type`` (0: none matches)."""
    kind, _, subtype = media_type.partition("/")
    found, specificity = 0.0, -1
    for range_kind, range_subtype, quality in ranges:
        if range_kind == kind and range_subtype == subtype:
            rank = 2
        elif range_kind == kind and range_subtype == "*":
            rank = 1
        elif range_kind == "*":
            rank = 0
        else:
            continue
        if rank > specificity:
            found, specificity = quality, rank
    return found


# What a FHIR client may ask for with ``_format`` and still get JSON (FHIR R4 http.html#mime).
_FHIR_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
FHIR_JSON_TYPES = ("application/fhir+json", "application/json")


def wants_other_than_json(accept: str | None, format_parameter: str | None) -> bool:
    """Whether a FHIR request asks only for what carelevel does not write (XML, Turtle): its
    ``_format`` parameter, which overrides ``Accept`` as FHIR says, names another format, or its
    ``Accept`` header accepts no JSON type (a missing or empty header accepts anything)."""
    if format_parameter:
        return format_parameter.split(";")[0].strip().lower() not in _FHIR_JSON_FORMATS
    return preferred(accept, FHIR_JSON_TYPES) is None
