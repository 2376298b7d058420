"""Signed view links (app/security/links.py) and the settings that key them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.kernel.issuers import CdsClient
from app.kernel.settings import Settings
from app.main import link_signer
from app.security.links import LinkExpired, LinkRefused, LinkSigner

SCREENING = "7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61"
NOW = 1_796_000_000.0
SIGNER = LinkSigner(b"k" * 32, 900)


def signed(**changes: str) -> dict[str, str]:
    return SIGNER.sign(SCREENING, tenant="clinic-a", client_id="cds:ehr-a", now=NOW) | changes


def test_a_link_names_only_what_it_opens_and_until_when() -> None:
    query = signed()
    assert set(query) == {"tenant", "client", "expires", "signature"}
    assert query["expires"] == str(int(NOW) + 900)
    grant = SIGNER.verify(SCREENING, query, NOW + 899)
    assert (grant.screening_id, grant.tenant, grant.client_id) == (
        SCREENING,
        "clinic-a",
        "cds:ehr-a",
    )


def test_a_genuine_link_expires() -> None:
    with pytest.raises(LinkExpired):
        SIGNER.verify(SCREENING, signed(), NOW + 900)


@pytest.mark.parametrize(
    "tampered",
    [
        {"tenant": "clinic-b"},
        {"client": "cds:ehr-b"},
        {"expires": str(int(NOW) + 90_000)},  # a longer life is tampering, not expiry
        {"expires": str(int(NOW) - 10)},  # a shorter one too
        {"signature": "A" * 43},
        {"signature": "short"},
        {"expires": "soon"},
        {"tenant": ""},
    ],
)
def test_a_changed_link_is_refused(tampered: dict[str, str]) -> None:
    with pytest.raises(LinkRefused):
        SIGNER.verify(SCREENING, signed(**tampered), NOW)


def test_a_link_opens_its_own_screening_only_and_needs_every_part() -> None:
    with pytest.raises(LinkRefused):
        SIGNER.verify("4bf2690c-7d08-457b-b7b2-f416be6d60c7", signed(), NOW)
    for part in ("tenant", "client", "expires", "signature"):
        incomplete = {name: value for name, value in signed().items() if name != part}
        with pytest.raises(LinkRefused):
            SIGNER.verify(SCREENING, incomplete, NOW)


def test_another_key_verifies_nothing() -> None:
    with pytest.raises(LinkRefused):
        LinkSigner(b"o" * 32, 900).verify(SCREENING, signed(), NOW)


def test_processes_share_links_only_through_the_configured_secret() -> None:
    configured = Settings(signed_link_secret="s" * 32, signed_link_seconds=60)
    first, second = link_signer(configured), link_signer(configured)
    query = first.sign(SCREENING, tenant="default", client_id="c", now=NOW)
    assert query["expires"] == str(int(NOW) + 60)
    assert second.verify(SCREENING, query, NOW).tenant == "default"
    # Unset: each process signs with a key of its own.
    with pytest.raises(LinkRefused):
        link_signer(Settings()).verify(
            SCREENING,
            link_signer(Settings()).sign(SCREENING, tenant="d", client_id="c", now=NOW),
            NOW,
        )


def test_the_secret_is_long_and_required_in_production_with_cds_clients() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(signed_link_secret="too short")
    ehr = CdsClient(
        name="ehr",
        issuer="https://ehr.example",
        jwks_url="https://ehr.example/jwks.json",
        tenant="clinic-a",
    )
    production: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://carelevel@db:5432/carelevel",
        "public_url": "https://carelevel.example",
        "redis_url": "redis://cache:6379/0",
        "cds_clients": [ehr],
    }
    with pytest.raises(ValidationError, match="CARELEVEL_SIGNED_LINK_SECRET"):
        Settings(**production)
    assert Settings(**production, signed_link_secret="s" * 32).signed_link_secret is not None
