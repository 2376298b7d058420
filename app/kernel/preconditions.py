"""Conditional requests (RFC 9110 section 13.1): whether ``If-Match`` or ``If-None-Match``
names a resource's current entity tag.

Both headers carry ``*`` or a comma-separated list of entity tags (``"2"``, ``W/"2"``); empty
list members are allowed (section 5.6.1). ``If-Match`` compares strongly: a weak tag matches
nothing, since a write must be based on exactly the current representation. ``If-None-Match``
compares weakly: ``W/"2"`` names ``"2"`` (a cache that keeps a weak copy revalidates it). A
value that is not such a list names no tag: ``If-Match`` then fails (412), which refuses the
write rather than guessing what was meant; ``If-None-Match`` answers in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.kernel.errors import PreconditionFailed, PreconditionRequired

# One list member and the separator after it. etagc: %x21 / %x23-7E / obs-text (%x80-FF).
_MEMBER = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')


@dataclass(frozen=True, slots=True)
class EntityTag:
    opaque: str  # between the quotes
    weak: bool


def entity_tags(value: str) -> tuple[EntityTag, ...] | None:
    """The tags of an ``If-Match``/``If-None-Match`` value: None for ``*``, no tags when the
    value is not a list of entity tags."""
    if value.strip(" \t") == "*":
        return None
    tags: list[EntityTag] = []
    position = 0
    while position < len(value):
        member = _MEMBER.match(value, position)
        if member is None or member.end() == position:
            return ()
        if member.group(2) is not None:
            tags.append(EntityTag(member.group(2), member.group(1) is not None))
        position = member.end()
    return tuple(tags)


def _current(tag: str) -> EntityTag:
    parsed = entity_tags(tag)
    if not parsed or len(parsed) != 1:
        raise ValueError(f"not one entity tag: {tag!r}")
    return parsed[0]


def if_match_names(if_match: str, current: str) -> bool:
    """Whether ``If-Match`` names ``current`` (``*``, or a strong tag equal to it)."""
    tags = entity_tags(if_match)
    if tags is None:
        return True
    now = _current(current)
    return not now.weak and any(not t.weak and t.opaque == now.opaque for t in tags)


def if_none_match_names(if_none_match: str, current: str) -> bool:
    """Whether ``If-None-Match`` names ``current`` (``*``, or a tag weakly equal to it): the
    client's copy is current, and a GET is answered 304."""
    tags = entity_tags(if_none_match)
    if tags is None:
        return True
    now = _current(current)
    return any(t.opaque == now.opaque for t in tags)


def require_if_match(if_match: str | None, current: str, *, missing: str, changed: str) -> None:
    """Refuse a change whose ``If-Match`` is absent (428, ``missing``) or names another tag than
    ``current`` (412, ``changed``, with the current ``ETag``)."""
    if if_match is None:
        raise PreconditionRequired(missing)
    if not if_match_names(if_match, current):
        raise PreconditionFailed(changed, headers={"ETag": current})
