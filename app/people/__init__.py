"""A person's screenings over time, linked by a pseudonymous id (measurement-based care)."""
