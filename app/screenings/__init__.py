"""Screenings: evaluate answers, store them with the rule-set version that decided them."""
