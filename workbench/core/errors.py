"""The errors a user can fix, under one base class the CLI prints as a one-line message.

A ``WorkbenchError`` says what is wrong with something the user gave or asked for (an option, a config
or data file, a dataset that lacks what a command needs, a model or lock in the way), naming the file
or value in one line. Anything else raised inside a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem the user can fix; the CLI prints ``error: <message>`` and exits with code 2."""


class ConfigError(WorkbenchError, ValueError):
    """A bad option, argument or config value (also a ``ValueError``, as callers have caught it so far)."""


class DataError(WorkbenchError, ValueError):
    """Input data that cannot be used: a malformed file, or datasets lacking what the request needs."""


#: What a user's mistake raises: a ``WorkbenchError``, or a file-system error a path causes (missing, a
#: folder for a file, no permission; its message names the path). Other ``OSError`` (a full disk, an
#: I/O fault) are not the user's and keep their traceback.
USER_ERRORS = (WorkbenchError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
