"""The `mlscale` command.

Each subcommand lives in its own module under `mlscale.commands` and registers
itself with `@command`; this file never lists them by hand. Command modules must
import heavy libraries (torch) inside their handler, so that `mlscale report`
runs on a login node without a GPU stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from mlscale import __version__
from mlscale.errors import UserError
from mlscale.registry import import_submodules

Handler = Callable[[argparse.Namespace], "int | None"]


@dataclass
class Command:
    name: str
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], Handler] | None
    order: int = 50
    raw: Callable[[list[str]], int | None] | None = None


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, description: str = "", order: int = 50):
    """Register `configure(parser) -> handler` as subcommand `name`.

    `configure` adds the subcommand's arguments and returns the function that
    runs it; `order` sets its place in `mlscale --help`.
    """

    def register(configure: Callable[[argparse.ArgumentParser], Handler]):
        COMMANDS[name] = Command(name, help, description or help, configure, order)
        return configure

    return register


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UserError(f"{self.prog}: {message}")


def raw_command(name: str, help: str, order: int = 50):
    """Register `handler(argv)` as subcommand `name`; it parses its own arguments.

    For commands whose flags depend on an argument (`mlscale run WORKLOAD ...`
    adds that workload's flags), so that building the top-level parser never
    imports a workload, and so torch.
    """

    def register(handler: Callable[[list[str]], int | None]):
        COMMANDS[name] = Command(name, help, help, None, order, raw=handler)
        return handler

    return register


def _load_commands() -> None:
    import mlscale.commands
    from mlscale.workloads import import_all

    import_submodules(mlscale.commands)
    import_all("cli")  # a workload's seed CLI (e.g. `mlscale plume`)


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = ArgumentParser(
        prog="mlscale",
        description=(
            "MPI-aware benchmark harness for scientific deep learning on HPC systems. "
            "Run a science workload under mpirun/srun/aprun/torchrun/horovodrun or alone, "
            "time every rank, and turn the run records into training, inference and "
            "scaling tables."
        ),
        epilog="Example: mpirun -np 4 mlscale run synthetic --system mycluster --epochs 2 --out runs/ "
        "&& mlscale report runs/",
    )
    parser.add_argument("--version", action="version", version=f"mlscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for cmd in sorted(COMMANDS.values(), key=lambda c: (c.order, c.name)):
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=cmd.raw is None,
        )
        if cmd.configure:
            p.set_defaults(_handler=cmd.configure(p))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if argv and argv[0] in COMMANDS and COMMANDS[argv[0]].raw:
            return int(COMMANDS[argv[0]].raw(argv[1:]) or 0)
        args = parser.parse_args(argv)
        if not getattr(args, "_handler", None):
            parser.print_help()
            return 2
        return int(args._handler(args) or 0)
    except UserError as err:
        # One line, even when the message quotes a value holding a newline (--time $'a\nb').
        print(f"mlscale: error: {err}".replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("mlscale: interrupted", file=sys.stderr)
        return 130
