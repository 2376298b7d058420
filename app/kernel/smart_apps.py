"""The EHRs that may launch carelevel's SMART app (``CARELEVEL_SMART_APPS``): each names its
FHIR base (the ``iss`` of a launch), the client id the EHR registered for the app and the
scopes the app asks for. Checked when the settings are read; app/fhir/smart_app.py serves the
app and refuses a launch from any other ``iss``."""

from __future__ import annotations

import re
from typing import Final, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# RFC 6749, 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN: Final = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
# What the app does with carelevel: populate and evaluate (write), read the determination.
CARELEVEL_SCOPES: Final = ("screenings:write", "screenings:read")
DEFAULT_SCOPE: Final = (
    "launch launch/patient openid fhirUser patient/*.rs patient/Observation.c "
    "patient/ServiceRequest.c patient/Provenance.c " + " ".join(CARELEVEL_SCOPES)
)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL already checked by ``_web_address``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _web_address(url: str, what: str) -> str:
    """``url`` when it is https (http only on the loopback), without credentials, query or
    fragment; its trailing slash dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError(f"{what} is not a valid URL") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)
    if not host or not secure:
        raise ValueError(f"{what} must be an https:// URL (http:// only for localhost)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{what} must have no credentials, query or fragment")
    return url.rstrip("/")


class SmartApp(BaseModel):
    """One EHR the SMART app may be launched from, as its FHIR server names itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, max_length=500, description="The EHR's FHIR base URL.")
    client_id: str = Field(pattern=r"^[\x21-\x7e]{1,200}$")
    scope: str = Field(default=DEFAULT_SCOPE, min_length=1, max_length=2000)
    # Origins of the EHR's authorization and token endpoints when they are not the FHIR
    # server's own: the app follows no discovered endpoint elsewhere.
    authorization_origins: tuple[str, ...] = ()

    @field_validator("iss")
    @classmethod
    def _iss(cls, value: str) -> str:
        return _web_address(value, "iss")

    @field_validator("authorization_origins")
    @classmethod
    def _origins(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        checked = tuple(_web_address(value, "authorization_origins") for value in values)
        if any(origin_of(value) != value for value in checked):
            raise ValueError("authorization_origins must be origins (scheme://host[:port])")
        return checked

    @model_validator(mode="after")
    def _scopes(self) -> Self:
        tokens = self.scope.split(" ")
        if not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens):
            raise ValueError("scope must be scope tokens separated by single spaces")
        missing = [scope for scope in CARELEVEL_SCOPES if scope not in tokens]
        if missing:
            raise ValueError(
                f"scope must ask for {' and '.join(missing)}: the app populates, evaluates "
                "and reads the screening with the EHR's access token"
            )
        return self

    @property
    def origins(self) -> tuple[str, ...]:
        """Every origin the app talks to for this EHR: its FHIR server's and authorization
        server's."""
        return tuple(dict.fromkeys((origin_of(self.iss), *self.authorization_origins)))


def unique_iss(apps: list[SmartApp]) -> list[SmartApp]:
    """``apps`` when no two name the same FHIR base."""
    seen: set[str] = set()
    for app in apps:
        if app.iss in seen:
            raise ValueError("each iss may be configured once")
        seen.add(app.iss)
    return apps
