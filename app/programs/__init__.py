"""The tenant's directory of treatment programs (its own and those it refers to)."""
