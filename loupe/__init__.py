"""Loupe core: the domain behind the HTTP API, the blob/timer functions and the trainer."""

__version__ = "0.1.0"
