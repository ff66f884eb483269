"""System descriptions: what a cluster looks like to a job script.

A system is a YAML file (schema in `system.schema.yaml`): its scheduler and rank
launcher, cores and GPUs per node, default partition/account/time, set-up lines
and environment. The shipped ones live in `systems/`; `--system` also takes a
path to the user's own file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlscale.errors import UserError

HERE = Path(__file__).resolve().parent
SYSTEMS_DIR = HERE / "systems"
SCHEMA_FILE = HERE / "system.schema.yaml"


@dataclass(frozen=True)
class System:
    name: str
    description: str
    scheduler: str
    launcher: str
    cores_per_node: int
    gpus_per_node: int
    source: str
    label: str = ""
    threads_per_core: int = 1
    ranks_per_node: int | None = None
    max_nodes: int | None = None
    partition: str | None = None
    partitions: tuple[str, ...] = ()
    account: str | None = None
    qos: str | None = None
    time: str = "01:00:00"
    select_extra: str | None = None
    directives: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    launcher_args: tuple[str, ...] = ()
    cpu_bind: str | None = None
    gpu_bind: str = "local_rank"
    python: str | None = None

    @property
    def default_ranks_per_node(self) -> int:
        return self.ranks_per_node or self.gpus_per_node or 1


def shipped_systems() -> list[str]:
    return sorted(p.stem for p in SYSTEMS_DIR.glob("*.yaml"))


@lru_cache(maxsize=1)
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def _where(path) -> str:
    return ".".join(str(p) for p in path)


def _message(error: jsonschema.ValidationError) -> str:
    """One line naming the key and what is wrong with it."""
    key = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{key}." if key else ""
        return f"unknown key {', '.join(repr(prefix + k) for k in extra)} (allowed: {', '.join(allowed)})"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        prefix = f"{key}." if key else ""
        return f"missing required key {', '.join(repr(prefix + k) for k in missing)}"
    if "propertyNames" in error.schema_path:
        return f"key {(key + '.' if key else '') + str(error.instance)!r}: not a valid variable name"
    if error.validator == "pattern":
        return f"key {key!r}: {error.instance!r} has characters not allowed there"
    return f"key {key!r}: {error.message}"


def validate_system(data: Any, source: str) -> None:
    """Raise UserError("SOURCE: ...") on the first problem in a system description."""
    from mlscale.launch.jobs.launchers import JobLauncher
    from mlscale.launch.jobs.schedulers import Scheduler

    if not isinstance(data, dict):
        raise UserError(f"{source}: a system description must be a YAML mapping, not {type(data).__name__}")
    schema = dict(_schema())
    props = dict(schema["properties"])
    props["scheduler"] = {**props["scheduler"], "enum": sorted(Scheduler.registry)}
    props["launcher"] = {**props["launcher"], "enum": sorted(JobLauncher.registry)}
    schema["properties"] = props
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), _where(e.absolute_path)))
    if errors:
        raise UserError(f"{source}: {_message(errors[0])}")
    launcher = JobLauncher.registry[data["launcher"]]
    if launcher.schedulers and data["scheduler"] not in launcher.schedulers:
        raise UserError(
            f"{source}: key 'launcher': {data['launcher']} runs under scheduler "
            f"{' or '.join(launcher.schedulers)}, not {data['scheduler']}"
        )


def load_system(name_or_path: str | os.PathLike) -> System:
    """A shipped system by name, or the user's YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = os.sep in text or text.endswith((".yaml", ".yml")) or path.is_file()
    if not looks_like_path:
        path = SYSTEMS_DIR / f"{text}.yaml"
        if not path.is_file():
            raise UserError(
                f"--system {text}: no such system (shipped: {', '.join(shipped_systems())}; or give a YAML path)"
            )
    if not path.is_file():
        raise UserError(f"{path}: no such system description file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where} ({getattr(err, 'problem', None) or err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    validate_system(data, str(path))
    cores = data["cores_per_node"]
    values = {
        **data,
        "cores_per_node": os.cpu_count() or 1 if cores == "auto" else cores,
        "label": data.get("label") or data["name"],
        "source": str(path),
        "env": {k: _env_value(v) for k, v in data.get("env", {}).items()},
    }
    for key in ("partitions", "directives", "setup", "launcher_args"):
        values[key] = tuple(data.get(key, ()))
    return System(**values)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
