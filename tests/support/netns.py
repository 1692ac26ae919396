"""Two hosts and a network between them, made of Linux network namespaces (iproute2).

The "server" namespace holds the PostgreSQL server and host B; the "client" namespace
holds host A, joined to the server by a veth pair (10.199.0.1/30 on the server's end,
.2 on A's). :meth:`Partition.cut` sets A's end down: A's packets go nowhere, as when a
host's link fails, and nothing tells either side. Addresses exist only inside the
namespaces made here, which the finalizer deletes (and with them the veth pair).
Needs root and ``ip netns``; :func:`partition_or_skip` skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

SERVER_ADDR = "10.199.0.1"
CLIENT_ADDR = "10.199.0.2"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)


def _must(*args: str) -> None:
    done = _ip(*args)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {done.stderr}")


class Partition:
    def __init__(self, tag: str) -> None:
        self.server = f"gxs{tag}"
        self.client = f"gxc{tag}"
        self.server_end = f"gvs{tag}"
        self.client_end = f"gvc{tag}"

    def run_in(self, ns: str) -> list[str]:
        """The prefix that runs a command inside namespace *ns*."""
        return ["ip", "netns", "exec", ns]

    def make(self) -> None:
        _must("netns", "add", self.server)
        _must("netns", "add", self.client)
        _must("link", "add", self.server_end, "netns", self.server, "type", "veth", "peer", "name", self.client_end,
              "netns", self.client)  # fmt: skip
        for ns, end, addr in ((self.server, self.server_end, SERVER_ADDR), (self.client, self.client_end, CLIENT_ADDR)):
            _must("-n", ns, "link", "set", "lo", "up")
            _must("-n", ns, "addr", "add", f"{addr}/30", "dev", end)
            _must("-n", ns, "link", "set", end, "up")

    def cut(self) -> None:
        """Host A's link goes down: from now on nothing passes either way."""
        _must("-n", self.client, "link", "set", self.client_end, "down")

    def heal(self) -> None:
        """Host A's link comes back (its address and route with it)."""
        _must("-n", self.client, "link", "set", self.client_end, "up")

    def remove(self) -> None:
        for ns in (self.client, self.server):
            _ip("netns", "del", ns)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    probe = f"gxprobe{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"ip netns add is not allowed here: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@contextlib.contextmanager
def partition_or_skip() -> Iterator[Partition]:
    """A fresh :class:`Partition`, removed afterwards whatever happens; skips when impossible."""
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    net = Partition(str(os.getpid() % 100000))
    try:
        net.make()
        yield net
    finally:
        net.remove()
