"""Wording shared by the CLI and the app."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 pair', '2 pairs', '0 pairs': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
