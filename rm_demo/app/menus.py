"""The app's menus: a gr.Dropdown that refuses a value outside its choices quietly.

An API client can send any value. gr.Dropdown refuses one outside its choices with an error that
prints a full traceback in the server's log and lists every choice back to the client; a refusal
is expected, so here it is one line for the client and nothing in the log.

A function, not a subclass: gradio writes a `.pyi` file beside the module of every component class
when it is defined, which a read-only install cannot take.
"""

from __future__ import annotations

import types

import gradio as gr


def _quiet_preprocess(self: gr.Dropdown, payload):
    try:
        return gr.Dropdown.preprocess(self, payload)
    except gr.Error:
        raise gr.Error(
            f"{payload!r} is not one of this menu's choices: pick one from the menu", print_exception=False
        ) from None


def menu(*args, **kwargs) -> gr.Dropdown:
    dropdown = gr.Dropdown(*args, **kwargs)
    dropdown.preprocess = types.MethodType(_quiet_preprocess, dropdown)
    return dropdown
