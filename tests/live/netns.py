"""Three network namespaces joined by veth pairs, for the inline test:

    infected (10.231.1.10-19) -- router (10.231.1.1 | 10.231.2.1) -- peer (10.231.2.20)

The router forwards through `iptables-nft -A FORWARD -j NFQUEUE --queue-num N`: nothing
crosses it unless a program (Suricata -q N) gives each packet a verdict. Every address lives
inside these namespaces. Deleting a namespace removes its links, routes and iptables rules, so
leaving the context manager (also on error) leaves nothing behind but processes that still run
inside, which their own context managers stop first."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

INFECTED_NET = "10.231.1"
PEER_NET = "10.231.2"
ROUTER_INFECTED = f"{INFECTED_NET}.1"
ROUTER_PEER = f"{PEER_NET}.1"
PEER = f"{PEER_NET}.20"
# The infected host's retransmission timeout floor. The test counts every transmission of a
# segment the IPS drops (the kernel's own retransmission count, read just before the session
# is aborted); with the floor well above the test's wait no retransmission races that read.
RTO_MIN = "5s"

_serial = count()
TOOLS = ("ip", "iptables-nft", "sysctl")


def tool(name: str) -> str | None:
    """Full path of a system tool; the sbin folders count even when PATH lacks them."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def missing_tools() -> list[str]:
    return [name for name in TOOLS if tool(name) is None]


def _tool(name: str) -> str:
    path = tool(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run `make netns-tools`")
    return path


def infected_address(n: int) -> str:
    return f"{INFECTED_NET}.{10 + n}"


@dataclass(frozen=True)
class Topology:
    infected: str
    router: str
    peer: str
    queue: int

    def run_in(self, netns: str, argv: list[str]) -> list[str]:
        """argv run inside the namespace."""
        return [_tool("ip"), "netns", "exec", netns, *argv]


def _run(argv: list[str]) -> None:
    argv = [_tool(argv[0]), *argv[1:]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


@contextmanager
def topology(queue: int, infected_addresses: int) -> Iterator[Topology]:
    """Build the three namespaces (names unique to this process and call) and tear them down."""
    tag = f"cfp2p-{os.getpid()}-{next(_serial)}"
    net = Topology(f"{tag}-inf", f"{tag}-rtr", f"{tag}-peer", queue)
    inf, rtr, peer = net.infected, net.router, net.peer
    made: list[str] = []
    try:
        for ns in (inf, rtr, peer):
            _run(["ip", "netns", "add", ns])
            made.append(ns)
        commands = [
            f"link add eth0 netns {inf} type veth peer name to-inf netns {rtr}",
            f"link add eth0 netns {peer} type veth peer name to-peer netns {rtr}",
            *(
                f"-n {inf} addr add {infected_address(i)}/24 dev eth0"
                for i in range(infected_addresses)
            ),
            f"-n {rtr} addr add {ROUTER_INFECTED}/24 dev to-inf",
            f"-n {rtr} addr add {ROUTER_PEER}/24 dev to-peer",
            f"-n {peer} addr add {PEER}/24 dev eth0",
            *(
                f"-n {ns} link set {link} up"
                for ns, link in (
                    (inf, "lo"),
                    (inf, "eth0"),
                    (rtr, "lo"),
                    (rtr, "to-inf"),
                    (rtr, "to-peer"),
                    (peer, "lo"),
                    (peer, "eth0"),
                )
            ),
            f"-n {inf} route add default via {ROUTER_INFECTED} rto_min {RTO_MIN}",
            f"-n {peer} route add default via {ROUTER_PEER}",
        ]
        for command in commands:
            _run(["ip", *command.split()])
        _run(net.run_in(rtr, [_tool("sysctl"), "-qw", "net.ipv4.ip_forward=1"]))
        nfqueue = f"-A FORWARD -j NFQUEUE --queue-num {queue}"
        _run(net.run_in(rtr, [_tool("iptables-nft"), *nfqueue.split()]))
        yield net
    finally:
        for ns in reversed(made):
            subprocess.run([_tool("ip"), "netns", "del", ns], capture_output=True, timeout=20)


@contextmanager
def process(argv: list[str], output: Path) -> Iterator[subprocess.Popen]:
    """A child process (stdout and stderr to `output`), ended on leaving: SIGTERM, then
    SIGKILL if it has not exited within 15 seconds."""
    with open(output, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop(proc, signal.SIGTERM)


def stop(proc: subprocess.Popen, sig: int, timeout: float = 15) -> int:
    """Signal the process (if still running) and wait for it; kill it past the timeout."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
