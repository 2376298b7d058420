"""Turning a bearer credential into a principal: an API key, or a JWT from a trusted issuer.

A checked API key is trusted for ``credential_cache_seconds`` by the process that checked it,
so most requests cost no database read; revoking a key takes effect at once in the revoking
process and within that time everywhere else. Keys are found by their visible prefix and
compared by hash in constant time.

A key is checked by one database read at a time: requests that carry it while its check is
under way wait for that check. And a key in use is checked again in the background shortly
before its trust runs out, so under steady traffic no request waits for a check and the
requests in flight do not all miss together when it expires (each would otherwise read and
touch the client's row). A key found not valid is refused without a database read for a minute
(a client retrying a wrong key, or replaying a revoked one, costs a dictionary lookup).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.kernel.db import utcnow
from app.kernel.errors import ServiceUnavailable, Unauthorized
from app.security.api_keys import hash_key, key_prefix, matches
from app.security.credentials import CredentialRepository
from app.security.jwt import IdentityProviderUnavailable, JwtVerifier, TokenRejected
from app.security.models import ApiClient
from app.security.principal import Principal, Scope

_CACHE_LIMIT = 10_000
# A key in use is checked again in the background once this share of its trust has elapsed.
_RECHECK_AFTER = 0.8
_KNOWN_SCOPES = frozenset(scope.value for scope in Scope)
# How long a key found not valid is refused without another database read.
REFUSAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Trusted:
    principal: Principal
    recheck_at: float
    until: float


def client_principal(client: ApiClient) -> Principal:
    """The principal an API client's key authenticates as."""
    return Principal(
        tenant=client.tenant_id,
        client_id=client.id,
        scopes=frozenset(Scope(scope) for scope in client.scopes if scope in _KNOWN_SCOPES),
        label=f"{client.name} ({client.key_prefix})",
    )


class Authenticator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jwt: JwtVerifier,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.jwt = jwt
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._trusted: dict[str, _Trusted] = {}
        self._checks: dict[str, asyncio.Task[Principal]] = {}  # by key digest, under way
        self._forgotten = 0  # revocations seen by this process; a check older is not kept
        # Keys found not valid (unknown, wrong or revoked), by digest: (until, why). Such a key
        # never becomes valid again, so sending it again costs no database read for a while.
        self._refused: dict[str, tuple[float, str]] = {}

    async def authenticate(self, token: str) -> Principal:
        """The principal ``token`` stands for; Unauthorized (401) otherwise."""
        digest, now = hash_key(token), self.clock()
        trusted = self._trusted.get(digest)  # a key checked in the last few seconds
        if trusted is not None and trusted.until > now:
            if trusted.recheck_at <= now and digest not in self._checks:
                prefix = key_prefix(token)
                if prefix is not None:
                    self._check(token, prefix, digest)  # in the background
            return trusted.principal
        refused = self._refused.get(digest)  # a key found not valid a moment ago
        if refused is not None and refused[0] > now:
            raise Unauthorized(refused[1])
        prefix = key_prefix(token)
        if prefix is not None:
            check = self._checks.get(digest) or self._check(token, prefix, digest)
            return await asyncio.shield(check)
        if self.jwt.enabled and JwtVerifier.looks_like_jwt(token):
            try:
                verified = await self.jwt.verify(token)
            except TokenRejected as error:
                raise Unauthorized(f"The access token is not accepted: {error}.") from None
            except IdentityProviderUnavailable:
                raise ServiceUnavailable(
                    "The identity provider's signing keys cannot be fetched; retry shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            return Principal(
                tenant=verified.tenant,
                client_id=verified.client_id,
                scopes=frozenset(Scope(scope) for scope in verified.scopes),
                label=f"{verified.subject}@{verified.provider}"[:300],  # recorded columns hold 300
                subject=verified.subject,
                patient=verified.patient,
            )
        raise Unauthorized("The credentials are neither an API key nor an accepted token.")

    def _check(self, token: str, prefix: str, digest: str) -> asyncio.Task[Principal]:
        """Start the one check of a key, which every request carrying it meanwhile awaits
        (shielded: a request that goes away does not cancel it for the others)."""
        check = asyncio.create_task(self._api_key(token, prefix, digest, self.clock()))
        self._checks[digest] = check
        check.add_done_callback(lambda done: self._check_done(digest, done))
        return check

    def _check_done(self, digest: str, check: asyncio.Task[Principal]) -> None:
        del self._checks[digest]
        # Retrieved whether or not a request still waits for it (a background check's error
        # reaches nobody). A key found revoked or changed is trusted no longer; a database
        # that failed leaves the trust to run out, and the next check to report it.
        error = None if check.cancelled() else check.exception()
        if isinstance(error, Unauthorized):
            self._trusted.pop(digest, None)
            if len(self._refused) >= _CACHE_LIMIT:
                self._refused.pop(next(iter(self._refused)))
            self._refused[digest] = (self.clock() + REFUSAL_SECONDS, error.detail)

    def trusts(self, token: str) -> bool:
        """Whether ``token`` is a key this process checked and trusts still."""
        trusted = self._trusted.get(hash_key(token))
        return trusted is not None and trusted.until > self.clock()

    async def aclose(self) -> None:
        """Cancel the checks under way (at shutdown, before the database engine goes)."""
        checks = list(self._checks.values())
        for check in checks:
            check.cancel()
        for check in checks:
            with contextlib.suppress(BaseException):
                await check

    async def _api_key(self, token: str, prefix: str, digest: str, now: float) -> Principal:
        """Check a key not trusted yet (or any more) against its client's stored hash."""
        forgotten = self._forgotten
        async with self.sessions() as session, session.begin():
            repository = CredentialRepository(session)
            client = await repository.by_prefix(prefix)
            if client is None or not matches(token, client.key_hash):
                raise Unauthorized("The API key is not valid.")
            if client.revoked_at is not None:
                raise Unauthorized("The API key has been revoked.")
            await repository.touch(client.id, utcnow())
        principal = client_principal(client)
        if self.cache_seconds > 0 and forgotten == self._forgotten:
            if len(self._trusted) >= _CACHE_LIMIT and digest not in self._trusted:
                self._trusted.pop(next(iter(self._trusted)))
            self._trusted[digest] = _Trusted(
                principal, now + self.cache_seconds * _RECHECK_AFTER, now + self.cache_seconds
            )
        return principal

    def forget(self, client_id: str) -> None:
        """Stop trusting ``client_id``'s key in this process (after a revocation commits); a
        check under way, begun before, keeps its answer for its requests only."""
        self._forgotten += 1
        self._trusted = {
            digest: trusted
            for digest, trusted in self._trusted.items()
            if trusted.principal.client_id != client_id
        }
