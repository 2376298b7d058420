"""The audit trail: an append-only record of who touched what."""
