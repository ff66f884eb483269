"""`mlscale info`: what each rank detected (launcher, ranks, nodes, rendezvous),
its devices, and the MPI library and framework versions."""

from __future__ import annotations

import argparse
import json


def _configure(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--workload", help="also build this workload's model (default config) and print its parameter count"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return info


def _devices() -> dict:
    try:
        import torch
    except ImportError:
        return {"cuda_devices": 0}
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    return {"cuda_devices": count, "cuda_names": names, "cpu_threads": torch.get_num_threads()}


def _gatherer(env):
    """Gather per-rank facts with MPI when an MPI launcher started us, else torch.distributed."""
    from mlscale.launch.comm import create_communicator
    from mlscale.launch.env import Launcher

    if env.size == 1:
        return create_communicator("single", env)
    mpi_launched = Launcher.registry[env.launcher].mpi_launched
    return create_communicator("mpi" if mpi_launched else "ddp", env)


def info(args: argparse.Namespace) -> int:
    import pandas as pd

    from mlscale.launch.env import detect_environment
    from mlscale.versions import collect_versions

    env = detect_environment()
    comm = _gatherer(env)
    mine = {**env.as_dict(), **_devices()}
    mine.pop("hosts")
    everyone = comm.gather(mine)
    if comm.rank == 0:
        versions = collect_versions()
        extra = _workload_facts(args.workload) if args.workload else None
        if args.json:
            print(json.dumps({"ranks": everyone, "versions": versions, "workload": extra}, indent=2))
        else:
            print("## Ranks\n")
            print(pd.DataFrame(everyone).to_markdown(index=False))
            print("\n## Versions\n")
            print(pd.Series(versions, name="version").to_frame().to_markdown())
            if extra:
                print("\n## Workload\n")
                print(pd.Series(extra, name="value").to_frame().to_markdown())
    comm.close()
    return 0


def _workload_facts(name: str) -> dict:

    from mlscale.bench.config import RunConfig
    from mlscale.bench.engine import get_engine
    from mlscale.bench.workload import Context, get_workload

    cls = get_workload(name)
    config = cls.Config()
    engine = cls.engine_for(config)
    workload = cls(config, Context.single_process(RunConfig(device="cpu"), engine=engine))
    model = workload.build_model()
    return {
        "workload": name,
        **get_engine(engine).model_facts(model),
        **{k: v for k, v in workload.info().items() if not isinstance(v, (dict, list))},
    }


from mlscale.cli import command  # noqa: E402

command("info", help="show what each rank detected: launcher, ranks, nodes, devices, versions", order=5)(_configure)
