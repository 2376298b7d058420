"""Tenant ids: every screening, rule set, client and audit event belongs to one tenant."""

from __future__ import annotations

import re

# The owner of the rule sets every tenant can read; no tenant may be called this.
SHARED = "shared"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_TENANT = re.compile(TENANT_PATTERN)


def is_tenant_id(value: str) -> bool:
    """Whether ``value`` can name a tenant (a lowercase slug, never ``shared``)."""
    return bool(_TENANT.fullmatch(value)) and value != SHARED
