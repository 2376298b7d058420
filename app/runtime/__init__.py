"""The HTTP runtime around the domain routers: the request edge (request ids, security headers,
access lines), the fast lane of the hot operations, problem+json error handlers (refusals of
bodies over the framework's limit included) and the OpenAPI document. Domain packages never import
it; app/main.py assembles it."""
