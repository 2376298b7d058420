"""Random identifiers."""

from __future__ import annotations

import os

_VARIANT = "89ab"  # RFC 9562: the two top bits of the variant nibble are 10


def random_uuid() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives it, built without the
    ``UUID`` object, which costs several times more: every request and every stored screening
    gets one."""
    digits = os.urandom(16).hex()
    variant = _VARIANT[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"
