"""A heartbeat between rank 0 and every other rank, independent of the collectives.

A rank that dies or stops (SIGKILL, a lost node, SIGSTOP, a deadlock) leaves its peers inside a
collective that may never return: MPI has no timeout, gloo's is minutes and names no rank. So every
rank keeps one TCP connection to rank 0 and both ends send a line every second from a daemon thread:

- a closed connection without a goodbye is a dead rank;
- no line for `timeout_s` (`--collective-timeout`) is a silent rank;
- a rank that fails sends its error first, so rank 0 records what went wrong where.

Rank 0 names the rank and its host to `on_failure` (the runner writes the failed record, says it in one
line and ends the job); the other ranks end the job themselves when rank 0 dies or falls silent.
Messages are JSON lines: hello (rank, host), beat, fail (error, code, record), end (code: rank 0 is
ending the job, so its closed connection is no death to report), bye.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BEAT_S = 1.0
# on_failure(message, exit status, whether to write a failed record); it ends the job.
OnFailure = Callable[[str, int, bool], None]


@dataclass
class _Link:
    """One connection, as rank 0 sees a peer (or a peer sees rank 0)."""

    sock: socket.socket
    rank: int | None = None
    host: str = "?"
    last: float = field(default_factory=time.monotonic)
    said_bye: bool = False
    ending: int | None = None  # the exit status rank 0 announced it ends the job with
    pending: bytes = b""
    lock: threading.Lock = field(default_factory=threading.Lock)  # the run's thread sends too (`end`)

    def send(self, message: dict) -> bool:
        """Send without blocking (a stopped peer must not stop the sender); False when the peer is gone."""
        try:
            with self.lock:
                self.sock.send(json.dumps(message).encode() + b"\n", socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass  # its buffer is full: it has stopped reading, which the silence check will tell
        except OSError:
            return False
        return True

    def receive(self) -> list[dict] | None:
        """The complete messages waiting; None when the connection is closed."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            return None
        self.last = time.monotonic()
        *lines, self.pending = (self.pending + data).split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def name(self) -> str:
        return f"rank {self.rank} on host {self.host}"


class Watchdog:
    """Rank 0: `listen()` before the address is broadcast, then `start()`; other ranks: `start(address)`.
    Every rank calls `stop()` after the run's last collective."""

    def __init__(self, rank: int, size: int, host: str, timeout_s: float):
        self.rank, self.size, self.host, self.timeout_s = rank, size, host, timeout_s
        self.on_failure: OnFailure | None = None
        self.tripped = threading.Event()  # a failure was found (rank 0: its record is being written)
        self._stopping = threading.Event()
        self._failing = threading.Event()  # this rank reported its own error; the end is expected
        self._listener: socket.socket | None = None
        self._root: _Link | None = None
        self._links: dict[int, _Link] = {}  # rank 0: its peers, by rank
        self._thread: threading.Thread | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def listen(self, advertised_host: str) -> tuple[str, int, str]:
        """Rank 0: open the port; returns what the other ranks need to connect (to broadcast)."""
        self._listener = socket.create_server(("", 0), backlog=max(self.size, 8))
        return advertised_host, self._listener.getsockname()[1], self.host

    def start(self, address: tuple[str, int, str], on_failure: OnFailure) -> None:
        self.on_failure = on_failure
        if self.rank == 0:
            target = self._serve
        else:
            addr, port, root_host = address
            sock = socket.create_connection((addr, port), timeout=self.timeout_s)
            sock.setblocking(False)
            self._root = _Link(sock, rank=0, host=root_host)
            self._root.send({"t": "hello", "rank": self.rank, "host": self.host})
            target = self._follow
        self._thread = threading.Thread(target=target, name="mlscale-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean end: say goodbye so the peers do not take the closed connection for a death."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * BEAT_S)

    # -- failures -------------------------------------------------------------------------------
    def report_failure(self, error: str, code: int, record: bool, grace_s: float) -> None:
        """A non-zero rank failed: tell rank 0 (which records it and ends the job), then wait for that
        end at most `grace_s` seconds. Rank 0 failed: tell the others it is ending the job."""
        if self.rank == 0:
            self._announce_end(code)
            return
        if self._root is None or self._stopping.is_set():
            return
        self._failing.set()
        if self._root.send({"t": "fail", "error": error, "code": code, "record": record}):
            self.tripped.wait(grace_s)

    def _announce_end(self, code: int) -> None:
        """Rank 0: the peers are about to lose it; they end quietly rather than report its death."""
        for link in list(self._links.values()):
            link.send({"t": "end", "code": code})

    def _trip(self, message: str, code: int = 1, record: bool = True) -> None:
        self.tripped.set()
        if self._failing.is_set():
            return  # this rank's own error is being reported; rank 0 closing is the expected end
        if self.rank == 0:
            self._announce_end(code)
        assert self.on_failure is not None
        self.on_failure(message, code, record)

    def _silent(self, link: _Link, since: float) -> str:
        return f"{link.name()} did not respond for {since:.0f} s (--collective-timeout {self.timeout_s:g})"

    # -- rank 0 ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._listener is not None
        started = time.monotonic()
        selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ, None)
        links = self._links
        next_beat = previous = 0.0
        while not self.tripped.is_set():
            for key, _ in selector.select(timeout=BEAT_S / 4):
                if key.data is None:
                    conn, _ = self._listener.accept()
                    conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ, _Link(conn))
                    continue
                link: _Link = key.data
                messages = link.receive()
                if messages is None:
                    selector.unregister(link.sock)
                    link.sock.close()
                    if not link.said_bye and not self._stopping.is_set():
                        self._trip(f"{link.name()} died (its heartbeat connection closed)")
                    continue
                for msg in messages:
                    if msg["t"] == "hello":
                        link.rank, link.host = msg["rank"], msg["host"]
                        links[link.rank] = link
                    elif msg["t"] == "bye":
                        link.said_bye = True
                    elif msg["t"] == "fail":
                        self._trip(f"{link.name()} failed: {msg['error']}", msg["code"], msg["record"])
            now = time.monotonic()
            if self._stopping.is_set():
                for link in links.values():
                    link.send({"t": "bye"})
                break
            if now >= next_beat:
                next_beat = now + BEAT_S
                for link in links.values():
                    link.send({"t": "beat"})
            if _awake(previous, now):
                self._check_silence(links, started, now)
            previous = now
        for link in links.values():
            link.sock.close()
        selector.close()
        self._listener.close()

    def _check_silence(self, links: dict[int, _Link], started: float, now: float) -> None:
        for rank in range(1, self.size):
            link = links.get(rank)
            if link is None:
                if now - started > self.timeout_s:
                    self._trip(f"rank {rank} never joined the heartbeat within {self.timeout_s:g} s")
            elif not link.said_bye and now - link.last > self.timeout_s:
                self._trip(self._silent(link, now - link.last))
            if self.tripped.is_set():
                return

    # -- other ranks ----------------------------------------------------------------------------
    def _follow(self) -> None:
        root = self._root
        assert root is not None
        selector = selectors.DefaultSelector()
        selector.register(root.sock, selectors.EVENT_READ)
        next_beat = previous = 0.0
        while not self.tripped.is_set():
            if selector.select(timeout=BEAT_S / 4):
                messages = root.receive()
                if messages is None:
                    if root.ending is not None and self.on_failure is not None:
                        self.tripped.set()
                        self.on_failure("", root.ending, False)  # rank 0 said why; end quietly
                    elif not root.said_bye and not self._stopping.is_set():
                        self._trip(f"{root.name()} died (its heartbeat connection closed); ending the job")
                    break
                for msg in messages:
                    root.said_bye = root.said_bye or msg["t"] == "bye"
                    root.ending = msg["code"] if msg["t"] == "end" else root.ending
            now = time.monotonic()
            if self._stopping.is_set():
                root.send({"t": "bye"})
                break
            if now >= next_beat:
                next_beat = now + BEAT_S
                if not root.send({"t": "beat"}) and not self._stopping.is_set():
                    self._trip(f"{root.name()} died (its heartbeat connection broke); ending the job")
            if _awake(previous, now) and not root.said_bye and now - root.last > self.timeout_s:
                self._trip(self._silent(root, now - root.last) + "; ending the job")
            previous = now
        selector.close()
        root.sock.close()


def _awake(previous: float, now: float) -> bool:
    """Whether this thread ran without a break since its last look: a rank that was itself stopped (or
    starved) reads what its peers sent meanwhile before it judges their silence."""
    return now - previous < 2 * BEAT_S
