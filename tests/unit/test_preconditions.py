"""Conditional requests as RFC 9110 compares them: If-Match strongly, If-None-Match weakly,
both a list of entity tags or ``*``; a value that is no such list names nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.kernel.errors import PreconditionFailed, PreconditionRequired
from app.kernel.preconditions import (
    EntityTag,
    entity_tags,
    if_match_names,
    if_none_match_names,
    require_if_match,
)

opaque = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != '"'), max_size=12
)
tags = st.builds(EntityTag, opaque, st.booleans())
spaces = st.sampled_from(["", " ", "\t", "  "])


def written(tag: EntityTag) -> str:
    return f'{"W/" if tag.weak else ""}"{tag.opaque}"'


@given(st.lists(st.tuples(tags, spaces, spaces), max_size=5))
def test_a_list_of_tags_reads_back_as_written(members: list[tuple[EntityTag, str, str]]) -> None:
    value = ",".join(f"{before}{written(tag)}{after}" for tag, before, after in members)

    assert entity_tags(value) == tuple(tag for tag, _, _ in members)


@given(tags, tags)
def test_if_match_is_strong_and_if_none_match_weak(sent: EntityTag, current: EntityTag) -> None:
    same = sent.opaque == current.opaque

    assert if_match_names(written(sent), written(current)) == (
        same and not sent.weak and not current.weak
    )
    assert if_none_match_names(written(sent), written(current)) == same


@pytest.mark.parametrize(
    ("header", "current", "strong", "weak"),
    [
        ('"1"', '"1"', True, True),
        ('W/"1"', '"1"', False, True),
        ('"1"', 'W/"1"', False, True),
        ('"2", "1"', '"1"', True, True),
        (' , "7" ,, W/"1" ,', '"1"', False, True),
        ('"a,b"', '"a,b"', True, True),  # a comma inside the quotes belongs to the tag
        ("*", '"9"', True, True),
        (" * ", '"9"', True, True),
        ('"2"', '"1"', False, False),
        ("1", '"1"', False, False),  # not quoted: not an entity tag
        ('"1" "2"', '"1"', False, False),  # no comma between two tags
        ('"1", *', '"1"', False, False),  # "*" is the whole value or nothing
        ('w/"1"', '"1"', False, False),  # W/ is case-sensitive
        ("", '"1"', False, False),
    ],
)
def test_comparisons(header: str, current: str, strong: bool, weak: bool) -> None:
    assert if_match_names(header, current) is strong
    assert if_none_match_names(header, current) is weak


def test_a_change_needs_if_match_naming_the_current_tag() -> None:
    with pytest.raises(PreconditionRequired) as missing:
        require_if_match(None, '"3"', missing="send it", changed="read again")
    with pytest.raises(PreconditionFailed) as changed:
        require_if_match('W/"3"', '"3"', missing="send it", changed="read again")

    assert missing.value.detail == "send it"
    assert (changed.value.detail, changed.value.headers) == ("read again", {"ETag": '"3"'})
    require_if_match('"2", "3"', '"3"', missing="send it", changed="read again")
