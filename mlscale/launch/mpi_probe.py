"""Ask MPI for what a launcher's environment variables leave out.

Used only when an MPI launcher started the process: importing mpi4py
initialises MPI, which a process started any other way must not do.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class MpiFacts:
    rank: int
    size: int
    local_rank: int
    local_size: int
    num_nodes: int
    master_addr: str
    master_port: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def probe() -> MpiFacts:
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    node = world.Split_type(MPI.COMM_TYPE_SHARED, key=world.rank)
    hosts = world.allgather(socket.gethostname())
    num_nodes = len(set(hosts))
    # Rank 0 offers a port it knows is free; on one node loopback is enough.
    offer = None
    if world.rank == 0:
        offer = ("127.0.0.1" if num_nodes == 1 else socket.gethostname(), free_port())
    addr, port = world.bcast(offer, root=0)
    facts = MpiFacts(world.rank, world.size, node.rank, node.size, num_nodes, addr, port)
    node.Free()
    return facts
