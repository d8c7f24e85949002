"""The one exception type users see: a plain message that names the place and the fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (file, column, row, option).

    The message is complete on its own: it names the file and the row or field at fault, and says
    how to fix it. The CLI prints it without a traceback and exits with code 2; the app shows it
    next to the control that caused it.
    """

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source = source
        self.fix = fix
        text = f"{source}: {message}" if source else message
        if fix:
            text = f"{text}\nHow to fix: {fix}"
        super().__init__(text)
