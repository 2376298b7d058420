"""Choosing a response's media type from Accept (app/kernel/negotiation.py)."""

from __future__ import annotations

import pytest

from app.kernel.negotiation import accept_header, preferred

OFFERED = ("application/json", "text/html", "text/markdown", "text/plain")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),  # no header: the default, offered first
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/json, text/plain, */*", "application/json"),  # axios: equals, JSON first
        (BROWSER, "text/html"),  # a browser navigating
        ("text/markdown", "text/markdown"),
        ("text/*", "text/html"),  # equals: the first text type offered
        ("text/plain;q=0.5, text/markdown;q=0.9", "text/markdown"),
        ("TEXT/Plain", "text/plain"),  # media types are case-insensitive
        ("text/*;q=0.3, text/plain", "text/plain"),  # the most specific range decides
        ("application/json;q=0, */*", "text/html"),  # refused outright, whatever */* says
        ("text/html;level=1", "text/html"),  # other parameters do not matter
    ],
)
def test_the_preferred_offered_type_is_chosen(accept: str | None, chosen: str) -> None:
    assert preferred(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    "accept",
    ["image/png", "application/xml, image/*", "*/*;q=0", "text/html;q=0, text/*;q=0, */*;q=0"],
)
def test_nothing_is_chosen_when_nothing_offered_is_acceptable(accept: str) -> None:
    assert preferred(accept, OFFERED) is None


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("nonsense", "application/json"),  # no valid range at all: as if no header
        ("*/json, text/html", "text/html"),  # a malformed range is left out
        ("text/html;q=high, text/plain", "text/plain"),  # an invalid quality counts as 0
        ("text/html;q=2, text/plain;q=0.1", "text/plain"),  # out of range: 0
    ],
)
def test_malformed_ranges_are_left_out(accept: str, chosen: str) -> None:
    assert preferred(accept, OFFERED) == chosen


def test_every_accept_field_counts() -> None:
    headers = [(b"accept", b"image/png"), (b"host", b"x"), (b"accept", b"text/plain")]
    assert accept_header(headers) == "image/png, text/plain"
    assert preferred(accept_header(headers), OFFERED) == "text/plain"
    assert accept_header([(b"host", b"x")]) is None
