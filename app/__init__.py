"""carelevel: level-of-care screening with explained, reproducible recommendations."""

__version__ = "0.1.0"
