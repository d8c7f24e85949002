"""The app's menus: gr.Dropdown taking any value, so that the handler behind it refuses one it does
not offer, in one line.

An API client can send any value. gr.Dropdown refuses one outside its choices itself, with an error
that prints a full traceback in the server's log and lists every choice back to the client. Every
handler here already checks what it is given (a model or run must be the visitor's: `Session.usable_model`,
`access.open_run`; an encoding must exist), so the menus let the value through to that check.
(A quieter Dropdown subclass would do too, but gradio writes a `.pyi` file beside the source of
every component class it sees defined, which a read-only install cannot take.)
"""

from __future__ import annotations

import gradio as gr


def menu(*args, **kwargs) -> gr.Dropdown:
    kwargs.setdefault("allow_custom_value", True)
    return gr.Dropdown(*args, **kwargs)
