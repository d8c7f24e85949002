"""Wording and names shared by the readers, the CLI and the app."""

from __future__ import annotations

import re


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 pair', '2 pairs', '0 pairs': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def header_key(name: str) -> str:
    """A column or field name as aliases are written: any case, spaces and hyphens as underscores, a scale
    after the name read past ("Rating (0-10)" and "Score [1-5]" are "rating" and "score")."""
    name = re.sub(r"\s*[(\[][^)\]]*[)\]]\s*$", "", name.strip()) or name
    return re.sub(r"[\s\-]+", "_", name.strip().lower())
