"""Process plumbing of a server worker: logging set-up and garbage-collector settings."""
