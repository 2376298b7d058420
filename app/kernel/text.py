"""Patterns for the text the service stores, shared by every request schema."""

from __future__ import annotations

# No control characters in identifiers, no NUL anywhere (PostgreSQL cannot store it, and it has
# no business in a reference or a comment).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
# Some character that ``str.strip()`` keeps: text that is not blank (Python's whitespace, spelled
# out, because a JSON Schema pattern's ``\s`` is ECMAScript's, which differs).
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
