"""Software versions and the git revision, for run records and `mlscale info`."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("mlscale", "torch", "torchvision", "numpy", "h5py", "mpi4py", "horovod", "tensorflow", "larcv")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def mpi_library_version() -> str | None:
    """The MPI library mpi4py is built against, without initialising MPI.

    MPI_Get_library_version may be called before MPI_Init; so when nothing has
    imported mpi4py yet, import it without initialising (a process not started
    by an MPI launcher must not become an MPI singleton just to be described).
    """
    import sys

    try:
        if "mpi4py.MPI" not in sys.modules:
            import mpi4py

            mpi4py.rc.initialize = False
            mpi4py.rc.finalize = False
        from mpi4py import MPI
    except Exception:
        return None
    try:
        return MPI.Get_library_version().splitlines()[0].strip()
    except Exception:
        return None


def collect_versions(with_mpi: bool = True) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in PACKAGES})
    try:
        import torch

        versions["cuda"] = torch.version.cuda
        versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
        nccl = torch.cuda.nccl.version() if torch.cuda.is_available() else None
        versions["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else (str(nccl) if nccl else None)
    except ImportError:
        pass
    if with_mpi:
        versions["mpi_library"] = mpi_library_version()
    return {k: v for k, v in versions.items() if v is not None}


def git_revision() -> str | None:
    """The checkout mlscale runs from, with '-dirty' when it has local changes."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
