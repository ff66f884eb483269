"""The bad-input corpus: what users get wrong, and what `mlscale` must answer.

Each `Case` is one command line (after `mlscale`), an optional `setup(folder)` that writes the
bad files into the case's own folder (the working directory of the command; `{d}` in argv and
words is that folder), and the words the one-line message must contain (the file or flag, and
what is wrong). `harness.check_case` asserts exit status 2, that one line, no traceback and an
unchanged folder.

Adding a workload: its flags' ranges (`opt(..., at_least=, at_most=)`) and the run options are
covered by `flag_cases()` without a line here; add its data format's broken files (missing,
empty, truncated, wrong format, wrong dataset names, NaN, out-of-range ids) to `DATA_CASES`
(data_cases.py).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...] = ()
    setup: Setup | None = None
    ranks: int | None = None  # under a real `mpirun -np RANKS`
    fresh: bool = False  # a new `python -m mlscale` instead of a fork of the warmed-up test process
    timeout: float = 120
    env: dict = field(default_factory=dict)
    flaky: str = ""  # why the case may fail now and then (a known race, not yet fixed): xfail, not strict


def case(id: str, *argv: str, words: tuple[str, ...] | str = (), setup: Setup | None = None, **kw) -> Case:
    return Case(id, tuple(argv), (words,) if isinstance(words, str) else tuple(words), setup, **kw)


# -- set-up helpers ------------------------------------------------------------------------------


def write(name: str, content: str | bytes = "") -> Setup:
    def setup(d: Path) -> None:
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def mkdir(name: str) -> Setup:
    return lambda d: (d / name).mkdir(parents=True, exist_ok=True)


def both(*setups: Setup) -> Setup:
    def setup(d: Path) -> None:
        for s in setups:
            s(d)

    return setup


# -- flags: generated from the declarations ------------------------------------------------------

# Run options every workload shares, each with the words its message must hold.
RUN_FLAGS: list[tuple[str, tuple[str, ...], tuple[str, ...], Setup | None]] = [
    ("global-batch-0", ("--global-batch-size", "0"), ("--global-batch-size", "at least 1"), None),
    ("batch-0", ("--batch-size", "0"), ("--batch-size", "at least 1"), None),
    ("batch-negative", ("--batch-size", "-4"), ("--batch-size", "at least 1"), None),
    ("batch-not-int", ("--batch-size", "8.5"), ("--batch-size", "invalid int value"), None),
    ("lr-nan", ("--lr", "nan"), ("--lr", "finite"), None),
    ("lr-inf", ("--lr", "inf"), ("--lr", "finite"), None),
    ("lr-negative", ("--lr", "-0.1"), ("--lr", "at least 0"), None),
    ("lr-word", ("--lr", "fast"), ("--lr", "invalid float value"), None),
    ("warmup-negative", ("--warmup-steps", "-1"), ("--warmup-steps", "at least 0"), None),
    ("max-steps-0", ("--max-steps", "0"), ("--max-steps", "at least 1"), None),
    ("epochs-negative", ("--epochs", "-1"), ("--epochs", "at least 0"), None),
    ("epochs-0-train", ("--epochs", "0", "--device", "cpu", "--backend", "single"), ("--epochs", "at least 1"), None),
    ("mode-unknown", ("--mode", "benchmark"), ("--mode", "invalid choice"), None),
    ("gc-unknown", ("--gc", "off"), ("--gc", "invalid choice"), None),
    ("unknown-flag", ("--epohcs", "2"), ("unrecognized arguments", "--epohcs"), None),
    ("flag-without-value", ("--epochs",), ("--epochs", "expected one argument"), None),
    ("run-id-escape", ("--run-id", "../escape"), ("--run-id", "plain directory name"), None),
    ("run-id-nested", ("--run-id", "a/b"), ("--run-id", "plain directory name"), None),
    ("run-id-dotdot", ("--run-id", ".."), ("--run-id", "plain directory name"), None),
    ("run-id-hidden", ("--run-id", ".r1.staging"), ("--run-id", "may not start with"), None),
    ("run-id-empty", ("--run-id", ""), ("--run-id", "empty"), None),
    ("run-id-newline", ("--run-id", "a\nb"), ("--run-id", "plain directory name"), None),
    ("run-id-exists", ("--run-id", "r1"), ("out/r1", "already exists"), mkdir("out/r1")),
    ("out-is-file", ("--out", "{d}/results"), ("--out", "is a file"), write("results", "x")),
    ("out-below-file", ("--out", "{d}/results/sub"), ("--out", "which is a file"), write("results", "x")),
    ("out-unwritable", ("--out", "/proc/mlscale-runs"), ("--out", "cannot create files in /proc"), None),
    ("save-weights-no-dir", ("--save-weights", "{d}/missing/w.pt"), ("--save-weights", "does not exist"), None),
    ("save-weights-is-dir", ("--save-weights", "{d}/out"), ("--save-weights", "is a directory"), None),
    ("save-weights-unwritable", ("--save-weights", "/proc/w.pt"), ("--save-weights directory", "not writable"), None),
    ("weights-missing", ("--weights", "{d}/w.pt"), ("--weights file not found",), None),
    ("weights-is-dir", ("--weights", "{d}/out"), ("--weights is not a file",), None),
]


def run_flag_cases(workloads: list[str]) -> list[Case]:
    cases = []
    for w in workloads:
        for id, flags, words, setup in RUN_FLAGS:
            argv = ("run", w, "--out", "{d}/out", *flags) if "--out" not in flags else ("run", w, *flags)
            cases.append(Case(f"run-{w}-{id}", argv, words, setup))
    return cases


def _bound_values(tp: type, meta: dict) -> list[tuple[str, str, str]]:
    """(id, value, expected words) for each way to break a bounded or numeric flag."""
    values = []
    if "at_least" in meta:
        low = meta["at_least"] - 1 if tp is int else meta["at_least"] - 0.5
        values.append(("below", f"{low:g}", f"at least {meta['at_least']:g}"))
    if "at_most" in meta:
        high = meta["at_most"] + 1 if tp is int else meta["at_most"] + 0.5
        values.append(("above", f"{high:g}", f"at most {meta['at_most']:g}"))
    if tp is float:
        values.append(("nan", "nan", "finite"))
    if tp is int:
        values.append(("word", "many", "invalid int value"))
    return values


def config_flag_cases(prefix: tuple[str, ...], config: type, id: str) -> list[Case]:
    """A case for every numeric flag of a workload's options dataclass: below its range, above it,
    NaN, a word for a number."""
    cases = []
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        tp = typing.get_args(hints[f.name])[0] if typing.get_args(hints[f.name]) else hints[f.name]
        if tp not in (int, float):
            continue
        flag = "--" + f.name.replace("_", "-")
        for how, value, words in _bound_values(tp, dict(f.metadata)):
            cases.append(Case(f"{id}-{f.name}-{how}", (*prefix, flag, value), (flag, words)))
    return cases


def flag_cases() -> list[Case]:
    from mlscale.bench.config import RunConfig
    from mlscale.bench.workload import get_workload, workload_names

    names = workload_names()
    cases = run_flag_cases(names)
    # Every numeric run option, from its declaration (new ones are covered as they are added).
    cases += config_flag_cases(("run", "synthetic", "--out", "{d}/out"), RunConfig, "run-options")
    for w in names:
        cls = get_workload(w)
        cases += config_flag_cases(("run", w, "--out", "{d}/out"), cls.Config, f"run-{w}")
        if cls.DataConfig is not None:
            cases += config_flag_cases(("data", w, "--out", "{d}/data"), cls.DataConfig, f"data-{w}")
            cases += [
                case(
                    f"data-{w}-out-is-file",
                    "data",
                    w,
                    "--out",
                    "{d}/data",
                    words=("--out", "is a file"),
                    setup=write("data", "x"),
                ),  # fmt: skip
                case(f"data-{w}-out-unwritable", "data", w, "--out", "/proc/mlscale-data", words=("--out", "/proc")),
                case(f"data-{w}-no-out", "data", w, words=("--out", "required")),
            ]
        else:
            cases.append(case(f"data-{w}-has-none", "data", w, "--out", "{d}/data", words=(w, "reads no data")))
    return cases


# -- commands --------------------------------------------------------------------------------------

COMMAND_CASES = [
    case("mlscale-unknown-command", "benchmark", words="invalid choice"),
    case("run-no-workload", "run", "--epochs", "2", words="the workload comes first"),
    case("run-unknown-workload", "run", "resnet", words=("unknown workload", "resnet")),
    case("data-unknown-workload", "data", "resnet", "--out", "{d}/data", words=("unknown workload", "resnet")),
    case("run-unknown-backend", "run", "synthetic", "--out", "{d}/out", "--backend", "nccl2", words="nccl2"),
    case("run-unknown-device", "run", "synthetic", "--out", "{d}/out", "--device", "tpu", words="--device"),
    case("info-unknown-workload", "info", "--workload", "resnet", words=("unknown workload", "resnet")),
    case(
        "matrix-unknown-switch",
        "matrix",
        "--switches",
        "turbo",
        "--dry-run",
        "--",
        "run",
        "synthetic",
        words=("--switches", "turbo"),
    ),
    case(
        "matrix-ranks-0",
        "matrix",
        "--ranks",
        "0",
        "--dry-run",
        "--",
        "run",
        "synthetic",
        words=("--ranks", "at least 1"),
    ),
    case(
        "matrix-bad-combinations", "matrix", "--combinations", "some", "--", "run", "synthetic", words="--combinations"
    ),
]

# -- mlscale launch: system descriptions and the fields that reach a job script -----------------------

SYSTEM = "name: x\ndescription: d\nscheduler: slurm\nlauncher: srun\ncores_per_node: 4\ngpus_per_node: 0\n"
LAUNCH = ("launch", "--nodes", "1", "--out", "{d}/sweep", "--dry-run")
RUN = ("--", "run", "synthetic", "--epochs", "1")
# Values a job directive (#SBATCH --account=...) must never carry: the script would run them.
HOSTILE = {"semicolon": "x;rm -rf ~", "subshell": "$(touch pwned)", "backticks": "`id`", "newline": "a\nb",
           "space": "a b", "quote": "q'uote"}  # fmt: skip
SYSTEM_CASES = [
    case("launch-system-unknown", *LAUNCH, "--system", "nosuch", *RUN, words=("--system nosuch", "no such system")),
    case("launch-system-missing-file", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml",)),
    case("launch-system-not-yaml", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "not valid YAML"),
         setup=write("sys.yaml", "name: [x\n")),
    case("launch-system-a-list", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "mapping"),
         setup=write("sys.yaml", "- a\n- b\n")),
    case("launch-system-missing-keys", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "missing"),
         setup=write("sys.yaml", "name: x\n")),
    case("launch-system-wrong-type", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "gpus_per_node"),
         setup=write("sys.yaml", SYSTEM.replace("gpus_per_node: 0", "gpus_per_node: many"))),
    case("launch-system-negative", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "cores_per_node"),
         setup=write("sys.yaml", SYSTEM.replace("cores_per_node: 4", "cores_per_node: -4"))),
    case("launch-system-unknown-key", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "colour"),
         setup=write("sys.yaml", SYSTEM + "colour: red\n")),
    case("launch-system-unknown-scheduler", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml", "pbs-pro-x"),
         setup=write("sys.yaml", SYSTEM.replace("scheduler: slurm", "scheduler: pbs-pro-x"))),
    case("launch-system-binary", *LAUNCH, "--system", "{d}/sys.yaml", *RUN, words=("sys.yaml",),
         setup=write("sys.yaml", b"\xff\xfe\x00\x01")),
    case("launch-nodes-0", "launch", "--system", "local", "--nodes", "0", "--dry-run", *RUN, words="--nodes 0"),
    case("launch-repeats-0", *LAUNCH, "--system", "local", "--repeats", "0", *RUN, words="--repeats 0"),
    case("launch-no-run", *LAUNCH, "--system", "local", words="nothing after --"),
    case("launch-no-nodes", "launch", "--system", "local", "--dry-run", *RUN, words=("--nodes",)),
    case("launch-bad-run-flag", *LAUNCH, "--system", "local", *RUN, "--epohcs", "2", words="--epohcs"),
    case("launch-owned-flag", *LAUNCH, "--system", "local", *RUN, "--out", "x", words="--out"),
    *[
        case(f"launch-{flag}-{how}", *LAUNCH, "--system", "generic-slurm-gpu", f"--{flag}", value, *RUN,
             words=(f"--{flag}", "expected [D-]HH:MM:SS" if flag == "time" else "job directive"))
        for flag in ("account", "partition", "qos", "time")
        for how, value in HOSTILE.items()
    ],
]  # fmt: skip


# The same checks from a new `python -m mlscale` rather than a fork: the fork changes nothing a user sees.
FRESH = [
    case("fresh-run-lr-nan", "run", "synthetic", "--out", "{d}/out", "--lr", "nan", words=("--lr", "finite"),
         fresh=True),
    case("fresh-run-out-is-file", "run", "example", "--out", "{d}/results", words=("--out", "is a file"),
         setup=write("results", "x"), fresh=True),
    case("fresh-data-out-is-file", "data", "cosmic-tagger", "--out", "{d}/data", words=("--out", "is a file"),
         setup=write("data", "x"), fresh=True),
]  # fmt: skip


def all_cases() -> list[Case]:
    from badinput.data_cases import DATA_CASES  # the broken forms of each workload's files, records, stores

    return [*flag_cases(), *COMMAND_CASES, *SYSTEM_CASES, *FRESH, *DATA_CASES]
