"""The one exception type users see, and how an OS error (a path, a full disk) is put to a user:
a plain message that names the place and the fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (file, column, row, option).

    The message is complete on its own: it names the file and the row or field at fault, and says
    how to fix it. The CLI prints it without a traceback and exits with code 2; the app shows it
    next to the control that caused it.
    """

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None, app_fix: str | None = None):
        """`app_fix`: the fix in the app's words (its menus and buttons) where the CLI's (flags) differ."""
        self.source = source
        self.fix = fix
        self.app_fix = app_fix
        self.message = f"{source}: {message}" if source else message
        text = f"{source}: {message}" if source else message
        if fix:
            text = f"{text}\nHow to fix: {fix}"
        super().__init__(text)


def os_error_message(exc: OSError) -> str:
    import errno

    """What went wrong with which file, and how to fix it (the CLI and the app word it alike)."""
    where = exc.filename or "a file"
    fix = {
        errno.ENOSPC: "free some disk space, or write somewhere else",
        errno.ENOENT: "check the path; the folder must exist",
        errno.EACCES: "check the permissions, or write somewhere else",
        errno.EISDIR: "give a file name, not a folder",
        errno.EROFS: "write somewhere else: this disk is read-only",
    }.get(exc.errno, "check the path and the disk")
    return f"{where}: {exc.strerror or exc}\nHow to fix: {fix}"
