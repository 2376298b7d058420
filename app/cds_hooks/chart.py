"""Reading the patient's chart from the EHR's FHIR server when a hook call's prefetch lacks it:
the thin shell around httpx. The queries are the discovery document's prefetch templates;
which keys to fetch, and whether the server may be asked at all, are decided elsewhere
(``may_query``, pure).

The token of ``fhirAuthorization`` is sent to that server only, over https (http only on the
loopback), never following a redirect; each answer is bounded in size and all the reads of one
call share one time budget (``ChartReader.seconds``). Answers are asked for uncompressed
(``Accept-Encoding: identity``) and a compressed one is refused, so what is bounded is what
arrives: a small compressed answer never expands in memory. Nothing of a request or answer is
logged but the query's key and why it failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from app.cds_hooks.schemas import FhirAuthorization, HookRequest
from app.fhir.terminology import FHIR_JSON
from app.kernel.issuers import CdsClient

logger = logging.getLogger("carelevel.cds_hooks.chart")

CHART_SECONDS = 3.0  # for all the chart reads of one call together
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # one search's Bundle
_CONTEXT_TOKEN = re.compile(r"\{\{context\.([A-Za-z_][A-Za-z0-9_]*)\}\}")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9.\-]{1,64}")


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def may_query(request: HookRequest, client: CdsClient | None, patient_id: str) -> bool:
    """Whether carelevel may read the chart itself: the call grants a token for a FHIR server
    the client's configuration lists, and the token is not restricted to another patient."""
    authorization: FhirAuthorization | None = request.fhirAuthorization
    if client is None or request.fhirServer is None or authorization is None:
        return False
    if authorization.patient is not None and authorization.patient != patient_id:
        return False
    allowed = {_base(server) for server in client.fhir_servers}
    return _base(request.fhirServer) in allowed


def filled(template: str, context: Mapping[str, Any]) -> str | None:
    """A prefetch template with its ``{{context.x}}`` tokens replaced; None when a token has
    no value, or one that is not a plain id (nothing else is ever put into a URL)."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = context.get(match.group(1))
        if not isinstance(found, str) or not _SAFE_VALUE.fullmatch(found):
            missing = True
            return ""
        return found

    query = _CONTEXT_TOKEN.sub(value, template)
    return None if missing or "{{" in query else query


@dataclass
class Fetched:
    """What the server answered, by prefetch key, and the keys it did not answer."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


class _TooLarge(Exception):
    pass


class _Encoded(Exception):
    """An answer in a content coding carelevel did not accept (it asks for identity)."""


class ChartReader:
    """Reads prefetch queries from an EHR's FHIR server (one connection pool per process)."""

    def __init__(
        self,
        *,
        seconds: float = CHART_SECONDS,
        max_bytes: int = MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.seconds),
                follow_redirects=False,
                trust_env=False,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def read(
        self,
        server: str,
        token: str,
        queries: Mapping[str, str],
        context: Mapping[str, Any],
        *,
        seconds: float | None = None,
    ) -> Fetched:
        """Each query (relative to ``server``) read with ``token``, all at once; what fails, or
        does not finish within ``seconds`` (the reader's budget by default), is listed as
        failed."""
        budget = self.seconds if seconds is None else max(seconds, 0.0)
        fetched = Fetched()
        urls = {key: filled(template, context) for key, template in queries.items()}
        fetched.failed = [key for key, url in urls.items() if url is None]
        wanted = {key: url for key, url in urls.items() if url is not None}
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": FHIR_JSON,
            "Accept-Encoding": "identity",
        }
        base = server.rstrip("/")
        tasks = {
            key: asyncio.ensure_future(self._one(key, f"{base}/{url}", headers))
            for key, url in wanted.items()
        }
        if not tasks:
            return fetched
        _, late = await asyncio.wait(tasks.values(), timeout=budget)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for key, task in tasks.items():
            answer = None if task.cancelled() or task.exception() else task.result()
            if task in late:
                logger.warning("chart query %s: no answer in %.1f s", key, budget)
            if answer is None:
                fetched.failed.append(key)
            else:
                fetched.values[key] = answer
        return fetched

    async def _one(self, key: str, url: str, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """One query's resource; ``key`` (the prefetch key) is all a log line names."""
        try:
            async with self._client().stream("GET", url, headers=headers) as answer:
                if answer.status_code != 200:
                    logger.warning("chart query %s: HTTP %d", key, answer.status_code)
                    return None
                body = await self._body(answer)
        except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, _TooLarge, _Encoded) as error:
            logger.warning("chart query %s failed: %s", key, type(error).__name__)
            return None
        try:
            resource = orjson.loads(body)
        except orjson.JSONDecodeError:
            logger.warning("chart query %s: not JSON", key)
            return None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return None
        return resource

    async def _body(self, answer: httpx.Response) -> bytes:
        """The answer's bytes as they arrive (never decoded: a gzip bomb stays small), within
        ``max_bytes``."""
        if answer.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise _Encoded
        declared = answer.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise _TooLarge
        body = bytearray()
        async for chunk in answer.aiter_raw():
            body += chunk
            if len(body) > self.max_bytes:
                raise _TooLarge
        return bytes(body)
