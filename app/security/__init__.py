"""Authentication, authorization and abuse limits at the edge of the service."""
