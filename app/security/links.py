"""Short-lived signed links that open a screening's readable view without an API key.

A link names a screening, the tenant it belongs to, the client that asked for it and the
second it stops working; an HMAC-SHA256 over exactly those, keyed with a server secret, makes
it unforgeable. It carries nothing else: no answer, no level, nothing about the person. The
view checks the signature first and the expiry second, so a link whose expiry was changed is
refused as tampered (403), and only a genuine one as expired (410).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

# Names the purpose inside the signed message: a signature made for anything else (another
# kind of link, a later format) never verifies as a view link.
_PURPOSE = "carelevel.screening-view.v1"
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of 32 bytes, unpadded
_EXPIRES = re.compile(r"[1-9][0-9]{0,11}")
QUERY_NAMES = ("tenant", "client", "expires", "signature")


class LinkRefused(Exception):
    """The link is malformed or its signature does not match what it names."""


class LinkExpired(Exception):
    """The link is genuine, and its time is over."""


@dataclass(frozen=True, slots=True)
class ViewGrant:
    """What a genuine link allows: reading one screening of one tenant, until ``expires``
    (Unix seconds), on behalf of the client that asked for the link."""

    screening_id: str
    tenant: str
    client_id: str
    expires: int


class LinkSigner:
    """Signs and verifies view links with one secret; links live ``lifetime_seconds``."""

    def __init__(self, secret: bytes, lifetime_seconds: int) -> None:
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds

    def sign(self, screening_id: str, *, tenant: str, client_id: str, now: float) -> dict[str, str]:
        """The query parameters of a link to ``screening_id``'s view, valid from ``now``."""
        grant = ViewGrant(screening_id, tenant, client_id, int(now) + self.lifetime_seconds)
        return {
            "tenant": tenant,
            "client": client_id,
            "expires": str(grant.expires),
            "signature": self._signature(grant),
        }

    def verify(self, screening_id: str, query: Mapping[str, str], now: float) -> ViewGrant:
        """The grant of a link's query; LinkRefused when it is malformed or tampered with,
        LinkExpired when it is genuine and past its expiry."""
        tenant, client_id, expires, signature = (query.get(name) for name in QUERY_NAMES)
        if (
            not tenant
            or not client_id
            or expires is None
            or _EXPIRES.fullmatch(expires) is None
            or signature is None
            or _SIGNATURE.fullmatch(signature) is None
        ):
            raise LinkRefused("the link is incomplete")
        grant = ViewGrant(screening_id, tenant, client_id, int(expires))
        if not hmac.compare_digest(self._signature(grant), signature):
            raise LinkRefused("the signature does not match")
        if now >= grant.expires:
            raise LinkExpired("the link has expired")
        return grant

    def _signature(self, grant: ViewGrant) -> str:
        # A JSON array: no choice of parts can be read as another (a separator could).
        message = orjson.dumps(
            [_PURPOSE, grant.screening_id, grant.tenant, grant.client_id, grant.expires]
        )
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
