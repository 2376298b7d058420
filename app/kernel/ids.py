"""Identifiers: random ones, and time-ordered ones for new rows."""

from __future__ import annotations

import os
import time

_VARIANT = "89ab"  # RFC 9562: the two top bits of the variant nibble are 10


def random_uuid() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives it, built without the
    ``UUID`` object, which costs several times more: every request and every stored screening
    gets one."""
    digits = os.urandom(16).hex()
    variant = _VARIANT[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def time_ordered_uuid() -> str:
    """A version 7 UUID (RFC 9562) as text: the Unix time in milliseconds, then 74 random bits.
    Rows keyed by it are inserted at the end of their indexes instead of all over them, and the
    text has the same form as any UUID, so the API's ids do not change shape. Built like
    ``random_uuid``, without the ``UUID`` object (the standard library has version 7 only from
    Python 3.14)."""
    milliseconds = time.time_ns() // 1_000_000
    digits = f"{milliseconds & 0xFFFF_FFFF_FFFF:012x}{os.urandom(10).hex()}"
    variant = _VARIANT[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-7{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:32]}"
