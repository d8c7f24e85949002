"""How the app words a problem: one helper for every tab, so each error reads the same way.

An `InputError`'s text is "what is wrong\nHow to fix: ..."; on the page the first line is bold and
the fix follows on its own line. Other exceptions (a file that cannot be read, a model that fails to
load) are named in a short sentence, never as a traceback.
"""

from __future__ import annotations

from rm_demo.errors import InputError, os_error_message


def problem(exc: BaseException, lead: str | None = None) -> str:
    """Markdown for `exc`, after `lead` ("Cannot start") when given."""
    if isinstance(exc, InputError):
        text = f"{exc.message}\nHow to fix: {exc.app_fix}" if exc.app_fix else str(exc)
    elif isinstance(exc, OSError):
        text = os_error_message(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    what, _, fix = text.partition("\n")
    head = f"**{lead}:** {what}" if lead else f"**{what}**"
    return f"{head}  \n{fix}" if fix else head
