"""Running one bad-input case and checking what a user would see.

Every case must end with exit status 2, exactly one error line on stderr that names the file or
flag (the case's words), no traceback anywhere, and the case's folder exactly as it was before
(nothing created, changed or half-written, in --out or elsewhere).

Log lines a normal run prints on rank 0 before the failure (`... [rank 0/1] INFO ...`) are
progress, not errors, and are not counted; a warning or a second error line is.

Speed: most cases run `mlscale` in a child forked from a process that has already imported
mlscale, its workloads and torch, so each case costs its own work, not a 4-second interpreter
start (the corpus has hundreds). The child is a real process running the real command line
(`mlscale.cli.main`) with its own stdin, stdout, stderr, working directory and exit status.
Cases marked `fresh` (and every multi-rank case, under a real mpirun) start
`python -m mlscale` from scratch.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support.run import child_env, mlscale_cmd

TIMEOUT_S = 120
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \[rank \d+/\d+\] INFO ")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` with its kind and, for files, a digest of the content."""
    tree = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            tree[rel] = "link"
        elif path.is_dir():
            tree[rel] = "dir"
        else:
            tree[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
    return tree


def warm_up() -> None:
    """Import what every case would import anyway, once, before the first fork."""
    import torch  # noqa: F401

    from mlscale.bench.workload import workload_names
    from mlscale.cli import build_parser

    build_parser()
    workload_names()


def run_forked(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = TIMEOUT_S) -> Outcome:
    """`mlscale ARGV` in a forked child of this (warmed-up) process."""
    out, err = cwd.parent / f".{cwd.name}.stdout", cwd.parent / f".{cwd.name}.stderr"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            fd_in = os.open(os.devnull, os.O_RDONLY)
            fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd_err = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            for fd, target in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
                os.dup2(fd, target)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the child's own standard streams
            sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
            sys.argv = ["mlscale", *argv]
            from mlscale.cli import main

            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's --help, sys.exit in a handler
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"mlscale {' '.join(argv)}: still running after {timeout} s")
        time.sleep(0.02)
    outcome = Outcome(
        os.waitstatus_to_exitcode(status), out.read_text(errors="replace"), err.read_text(errors="replace")
    )
    out.unlink()
    err.unlink()
    return outcome


def run_fresh(argv: list[str], cwd: Path, env: dict[str, str], ranks: int | None, timeout: float) -> Outcome:
    """`python -m mlscale ARGV` from scratch, under `mpirun -np RANKS` when given."""
    try:
        proc = subprocess.run(
            mlscale_cmd(*argv, ranks=ranks), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"mlscale {' '.join(argv)}: still running after {timeout} s") from None
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check_case(case, folder: Path) -> Outcome:
    """Set the case up in `folder`, run it, and assert what a user must see."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)  # a fresh, empty results root for every case
    if case.setup:
        case.setup(folder)
    argv = [a.replace("{d}", str(folder)) for a in case.argv]
    env = child_env({"MLSCALE_INDEX_WAIT_S": "5", "TQDM_DISABLE": "1", **case.env})
    before = snapshot(folder)
    if case.fresh or case.ranks:
        outcome = run_fresh(argv, folder, env, case.ranks, case.timeout)
    else:
        outcome = run_forked(argv, folder, env, case.timeout)
    shown = f"mlscale {' '.join(argv)}\n--- exit {outcome.returncode}\n--- stderr\n{outcome.stderr[-3000:]}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, shown
    assert outcome.returncode == 2, shown
    lines = outcome.error_lines
    if case.ranks:  # mpirun adds its own report of a rank's non-zero exit; every rank must say the same line
        lines = list(dict.fromkeys(line for line in lines if line.startswith("mlscale:")))
    assert len(lines) == 1, f"expected one error line, got {len(lines)}\n{shown}"
    message = lines[0]
    assert message.startswith("mlscale: error: "), shown
    for word in case.words:
        assert word.replace("{d}", str(folder)).lower() in message.lower(), f"{word!r} not in the message\n{shown}"
    assert snapshot(folder) == before, f"the case's folder changed\n{shown}"
    return outcome
