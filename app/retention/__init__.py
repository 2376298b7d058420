"""Retention: monthly partitions of screenings and audit events, each tenant's retention
policy, and the expiry of what is past it."""
