"""CDS Hooks 2.0: wire models for discovery, service calls, cards and feedback."""
