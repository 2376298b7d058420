"""The one set of test helpers: applications and clients (apps), example answers (examples),
problem assertions (problems) and signed tokens (tokens). No tests here."""
