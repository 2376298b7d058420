"""The database migrations (Alembic). Installed, they are the package ``app.migrations``
(pyproject.toml maps it to this directory), which is where the service finds them."""
