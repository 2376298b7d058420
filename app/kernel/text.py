"""Patterns for the text the service stores, shared by every request schema."""

from __future__ import annotations

# No control characters in identifiers, no NUL anywhere (PostgreSQL cannot store it, and it has
# no business in a reference or a comment).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
