"""The one base class of every error a user can fix: the CLI prints these as ``error: ...`` and exits 2.

Anything else that escapes a command is a bug and shows its traceback. ``GoalcoverError`` derives from ``ValueError``
so that code written against the standard exception (``except ValueError``) keeps catching bad input.

Example:
    >>> raise GoalcoverError("data.jsonl, line 3: not valid JSON")
"""


class GoalcoverError(ValueError):
    """Bad input or settings, with a message that names the file, row or field and says what to do."""


class OutputExistsError(GoalcoverError, FileExistsError):
    """The output already exists and replacing it was not asked for."""
