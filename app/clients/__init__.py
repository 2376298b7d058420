"""API clients: tenants, credentials (API keys) and scopes."""
