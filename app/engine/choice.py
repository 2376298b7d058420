"""The base of every enumeration in the engine."""

from __future__ import annotations

from enum import StrEnum


class Choice(StrEnum):
    """A string enumeration that hashes like its value.

    A member and its string are then the same dictionary key (as they already compare equal),
    and lookups skip ``Enum.__hash__``, a Python-level function called on every dictionary
    access: the engine's hot path looks members up in dictionaries many times per screening.
    """

    __hash__ = str.__hash__
