"""Errors a user can fix: printed as one line, exit status 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a missing file, a wrong flag, a malformed dataset.

    The message should name the file (or flag) and what is wrong with it.
    """

    exit_code = 2
