"""The app's menus: gr.Dropdown, refusing a value outside its choices quietly.

An API client can send any value. gr.Dropdown refuses one outside its choices with an error that
prints a full traceback in the server's log and lists every choice back to the client; a refusal
is expected, so it is a one-line message here and nothing in the log.
"""

from __future__ import annotations

import gradio as gr

from gradio.events import Dependency

class Menu(gr.Dropdown):
    is_template = True  # drawn by the browser as the dropdown it is

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise gr.Error(
                f"{payload!r} is not one of this menu's choices: pick one from the menu", print_exception=False
            ) from None
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component