"""Quoting for generated scripts: every value is shell-quoted unless it is a `Raw` fragment
that the templates themselves wrote (a `"$PBS_NODEFILE"` expansion)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from mlscale.errors import UserError

# What may appear in a scheduler directive line (#SBATCH ...) unquoted.
DIRECTIVE_TOKEN = re.compile(r"^[A-Za-z0-9_.,:=+@/%\[\]-]+$")


class Raw(str):
    """A shell fragment written by mlscale itself: emitted as is."""


def quote(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    return shlex.quote(str(value))


def join(argv: Iterable[object]) -> str:
    return " ".join(quote(a) for a in argv)


def directive_value(value: object, what: str = "value") -> str:
    """A value for a directive line: a plain token, or a UserError. Directives are
    comments to the shell, so quoting cannot protect them; only safe characters pass."""
    text = str(value)
    if not DIRECTIVE_TOKEN.match(text):
        raise UserError(f"{what} {text!r}: only letters, digits and _.,:=+@/%- may appear in a job directive")
    return text


def comment(text: object) -> str:
    """Text for a `# ...` comment line: control characters (a newline would end the
    comment and start a command) are shown escaped instead."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
