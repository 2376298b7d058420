"""The shared kernel: settings, the database engine and sessions, migrations, errors, ids,
pagination, responses, tenancy, token issuers' configuration and text constraints. Every domain
may import it; it imports no domain (docs/architecture.md, Layers)."""
