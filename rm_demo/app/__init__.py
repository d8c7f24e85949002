"""The Gradio app, one module per tab: data (steps 1-2), train, compare, runs; `build` assembles them.

Each tab module holds module-level handlers of plain values (tested without a browser), a dataclass
of its components with a `build()` that lays them out, and a `wire()` that connects them.
"""

from rm_demo.app.build import build, main

__all__ = ["build", "main"]
