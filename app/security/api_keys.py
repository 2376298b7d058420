"""API keys: generated once, shown once, stored only as a hash.

A key reads ``clk_<8 hex>.<43 base64url>``. The part before the dot is its *prefix*: stored in
clear, unique, shown in listings so people can tell keys apart, and used to find the key's row.
The whole key is stored as its SHA-256. A slow password hash (bcrypt, argon2) protects
guessable secrets; these carry 256 random bits, so a fast hash loses nothing and keeps the
check cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "clk_"
_KEY = re.compile(r"^(clk_[0-9a-f]{8})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret: str  # the whole key: shown once, never stored
    hash: str


def generate_key() -> NewKey:
    """A new random API key with its prefix and hash."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, secret=key, hash=hash_key(key))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(token: str) -> str | None:
    """The prefix of a well-formed API key; None for anything else."""
    match = _KEY.fullmatch(token)
    return match.group(1) if match else None


def matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` is the key stored as ``stored_hash`` (constant-time)."""
    return hmac.compare_digest(hash_key(token), stored_hash)
