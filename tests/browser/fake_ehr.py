"""A small EHR for the SMART app's browser tests: a SMART App Launch 2.x authorization server
(discovery, an authorize endpoint that approves at once, a token endpoint that checks PKCE S256
and signs a JWT access token, its JWKS) and a FHIR server holding one patient's chart, which
records the transactions posted to its base. It answers the app's origin with CORS headers, as
an EHR serving browser apps must. Run it with ``running_ehr``: uvicorn in a thread, on a free
loopback port."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.server_support import free_port
from tests.support.tokens import RSA_KEY, public_jwk

CLIENT_ID = "carelevel-smart"
PATIENT_ID = "pat-1"
LAUNCH_ID = "launch-7f3a"
TENANT = "ehr-clinic"
CARELEVEL_AUDIENCE = "https://carelevel.test/api"
KEY_ID = "ehr-key-1"
WRITE_SCOPES = ("patient/Observation.c", "patient/ServiceRequest.c", "patient/Provenance.c")
FHIR_JSON = "application/fhir+json"


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"given": ["Alex"], "family": "Rivera"}],
        "gender": "male",
        "birthDate": "1985-04-02",
    }


def heart_rate() -> dict[str, Any]:
    """A heart rate measured an hour ago: within the window $populate reads vitals from."""
    taken = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    return {
        "resourceType": "Observation",
        "id": "hr-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": taken,
        "valueQuantity": {
            "value": 88,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def challenge_of(verifier: str) -> str:
    """RFC 7636 S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    patient: str


@dataclass
class FakeEhr:
    """The EHR's state: its address, the codes it issued, what the tests make it grant and
    what it received."""

    base_url: str
    redirect_uri: str = ""  # the app's, once carelevel's address is known
    grant_write: bool = True
    codes: dict[str, Grant] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refused_tokens: list[str] = field(default_factory=list)
    filed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def iss(self) -> str:
        return f"{self.base_url}/fhir"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/auth"

    def identity_provider(self) -> dict[str, Any]:
        """carelevel's CARELEVEL_IDENTITY_PROVIDERS entry for this EHR's tokens."""
        return {
            "name": "fake-ehr",
            "issuer": self.issuer,
            "audience": CARELEVEL_AUDIENCE,
            "jwks_url": f"{self.issuer}/jwks",
            "algorithms": ["RS256"],
            "tenant": TENANT,
        }

    def smart_app(self) -> dict[str, Any]:
        """carelevel's CARELEVEL_SMART_APPS entry for this EHR."""
        return {"iss": self.iss, "client_id": CLIENT_ID}

    # --- authorization server ------------------------------------------------------------

    async def smart_configuration(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["launch", "launch/patient", "openid", "fhirUser"],
                "response_types_supported": ["code"],
                "capabilities": [
                    "launch-ehr",
                    "launch-standalone",
                    "client-public",
                    "context-ehr-patient",
                    "context-standalone-patient",
                    "permission-v2",
                ],
            }
        )

    def _authorization_refusal(self, query: dict[str, str]) -> str | None:
        expected = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "aud": self.iss,
            "code_challenge_method": "S256",
        }
        wrong = [name for name, value in expected.items() if query.get(name) != value]
        if wrong:
            return f"wrong {', '.join(wrong)}"
        if len(query.get("code_challenge", "")) != 43 or not query.get("state"):
            return "a code challenge and a state are required"
        scopes = query.get("scope", "").split()
        if "launch" in query:
            if query["launch"] != LAUNCH_ID or "launch" not in scopes:
                return "unknown launch"
        elif "launch/patient" not in scopes:
            return "a standalone launch asks for launch/patient"
        return None

    async def authorize(self, request: Request) -> Response:
        """Approves at once (the clinician is signed in to the EHR)."""
        query = dict(request.query_params)
        self.authorize_requests.append(query)
        refusal = self._authorization_refusal(query)
        if refusal is not None:
            return PlainTextResponse(refusal, status_code=400)
        scopes = [s for s in query["scope"].split() if self.grant_write or s not in WRITE_SCOPES]
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            CLIENT_ID, query["redirect_uri"], query["code_challenge"], " ".join(scopes), PATIENT_ID
        )
        back = {"code": code, "state": query["state"]}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

    def _token_refusal(self, form: dict[str, str], grant: Grant | None) -> str | None:
        if form.get("grant_type") != "authorization_code" or grant is None:
            return "invalid_grant"
        if form.get("client_id") != grant.client_id:
            return "invalid_client"
        if form.get("redirect_uri") != grant.redirect_uri:
            return "invalid_grant"
        if challenge_of(form.get("code_verifier", "")) != grant.challenge:
            return "invalid_grant"
        return None

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # x-www-form-urlencoded
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)  # a code is used once
        refusal = self._token_refusal(form, grant)
        if refusal is not None or grant is None:
            self.refused_tokens.append(refusal or "invalid_grant")
            return JSONResponse({"error": refusal}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "practitioner-3",
            "aud": [CARELEVEL_AUDIENCE, self.iss],
            "client_id": grant.client_id,
            "scope": grant.scope,
            # The launch's patient, as SMART authorization servers put it in the token too:
            # carelevel binds the token to that patient.
            "patient": grant.patient,
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_hex(12),
        }
        access_token = jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": KEY_ID})
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 600,
                "scope": grant.scope,
                "patient": grant.patient,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [public_jwk(RSA_KEY, KEY_ID, alg="RS256", use="sig")]})

    # --- FHIR server -----------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        try:
            jwt.decode(
                header.removeprefix("Bearer "),
                RSA_KEY.public_key(),
                algorithms=["RS256"],
                audience=self.iss,
                issuer=self.issuer,
            )
        except jwt.InvalidTokenError:
            return False
        return True

    def _chart(self, resource_type: str) -> list[dict[str, Any]]:
        return {"Patient": [patient()], "Observation": [heart_rate()]}.get(resource_type, [])

    async def read_patient(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(status_code=401)
        if request.path_params["id"] != PATIENT_ID:
            return Response(status_code=404)
        return JSONResponse(patient(), media_type=FHIR_JSON)

    async def search(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(status_code=401)
        resource_type = request.path_params["type"]
        about = request.query_params.get("patient")
        found = self._chart(resource_type) if about == PATIENT_ID else []
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"{self.iss}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in found
            ],
        }
        return JSONResponse(bundle, media_type=FHIR_JSON)

    async def transaction(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(status_code=401)
        bundle = await request.json()
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return Response(status_code=400)
        self.filed.append(bundle)
        entries = [
            {
                "response": {
                    "status": "201 Created",
                    "location": f"{entry['resource']['resourceType']}/filed-{index}/_history/1",
                }
            }
            for index, entry in enumerate(bundle.get("entry", []))
        ]
        return JSONResponse(
            {"resourceType": "Bundle", "type": "transaction-response", "entry": entries},
            media_type=FHIR_JSON,
        )

    def application(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", self.smart_configuration),
                Route("/auth/authorize", self.authorize),
                Route("/auth/token", self.token, methods=["POST"]),
                Route("/auth/jwks", self.jwks),
                Route("/fhir", self.transaction, methods=["POST"]),
                Route("/fhir/Patient/{id}", self.read_patient),
                Route("/fhir/{type:str}", self.search),
            ],
            middleware=[
                # The app's origin is carelevel's, on a port chosen after this server starts.
                Middleware(
                    CORSMiddleware,
                    allow_origin_regex=r"http://127\.0\.0\.1:\d+",
                    allow_methods=["GET", "POST"],
                    allow_headers=["Authorization", "Content-Type", "Accept"],
                )
            ],
        )


@contextlib.contextmanager
def running_ehr() -> Iterator[FakeEhr]:
    """The fake EHR served on a free loopback port for the block."""
    port = free_port()
    ehr = FakeEhr(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(ehr.application(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the fake EHR stopped as it started"
        assert time.monotonic() < deadline, "the fake EHR did not start"
        time.sleep(0.02)
    try:
        yield ehr
    finally:
        server.should_exit = True
        thread.join(timeout=10)
