"""Benchmark results as they come: one JSON line on stdout, and appended to a file when one is named."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: Path | None) -> None:
    line = json.dumps(result)
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
