"""What operators and integrators use around the API: health and readiness, Prometheus metrics,
and the self-hosted docs pages."""
