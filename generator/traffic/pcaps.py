"""Deterministic test traffic for the Conficker C P2P detection pack (`cfp2p pcaps`).

This module is the catalogue: it lists the scenario modules' builders in a fixed order
(KINDS: positive, reassembly, scanning, negative, large) and writes their pcaps. A new
scenario is a builder decorated with @scenario (registry.py) in the module of its kind;
packets.py holds what the builders share.

Every scenario in SCENARIOS builds a short list of Ethernet/IPv4 packets; write_pcaps() writes
one classic pcap (linktype 1, microsecond timestamps, little-endian) per scenario. The output is
byte-for-byte reproducible: each scenario draws from its own random.Random seeded with
zlib.crc32 of its name, timestamps start at BASE_TS (2026-11-26T12:00:00Z) and advance by fixed
small steps, MAC addresses are derived from the IPv4 address, and all addresses come from the
documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 (plus the SSDP multicast
group in neg-services).

Positive scenarios only use real Conficker listener ports: codec.ports(listener, week) at
the packet's time, index 1 or 3 for UDP and index 0 or 2 for TCP, from non-blacklisted ephemeral
source ports. TCP sessions have a full three-way handshake, data segments with correct seq/ack,
receiver ACKs and a FIN/ACK teardown, so Suricata's stream engine sees them as established. The
issue 13 scenarios (tcp-reorder-*, tcp-retransmit-*, tcp-repacketized, tcp-overlap-*,
tcp-spurious-retransmit, neg-tcp-gap-never-fills) send segments out of order, again, overlapping
or never (TcpSession.send_pieces), with the receiver acking only what it holds in sequence; the
session whose hole never fills ends with a RST.

Scenario.expect counts the valid messages a correct decoder finds, per transport and kind:
keys udp_control, udp_data, tcp_control, tcp_data. Negatives expect zero everywhere.
Scenario.attempts counts, per source address, what the scan count sees: UDP datagrams holding a
valid message sent to one of the destination's computed UDP ports, and TCP connections whose SYN
goes to one of its computed TCP ports (once per connection), for the packet's epoch week or,
within WEEK_SLOP seconds of a rollover, the neighbouring one.
"""

from __future__ import annotations

import pathlib

from . import large, negative, positive, reassembly, scanning
from .packets import (
    BASE_TS,
    EXPECT_KEYS,
    LISTENER,
    LISTENER2,
    LISTENER3,
    MSS,
    PROBER,
    PROBER2,
    PROBER3,
    ROLLOVER_TS,
    SCANNER,
    SCANNER2,
    WEEK_SLOP,
    message,
    write_pcap,
)
from .reassembly import REORDER_BYTES, REORDER_SEGMENTS
from .registry import REGISTERED, Scenario

# The scenario modules register their builders on import; SCENARIOS lists them kind by kind.
KINDS = (positive, reassembly, scanning, negative, large)
SCENARIOS: list[Scenario] = [
    s for kind in KINDS for s in REGISTERED if s.build.__module__ == kind.__name__
]

EXPECTED: dict[str, dict[str, int]] = {s.name: dict(s.expect) for s in SCENARIOS}


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


def write_pcaps(outdir: pathlib.Path) -> list[pathlib.Path]:
    """Write one <outdir>/<name>.pcap per scenario (creating outdir); return the paths."""
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return [write_pcap(outdir / s.filename, s.packets()) for s in SCENARIOS]


__all__ = [
    "BASE_TS",
    "EXPECTED",
    "EXPECT_KEYS",
    "LISTENER",
    "LISTENER2",
    "LISTENER3",
    "MSS",
    "PROBER",
    "PROBER2",
    "PROBER3",
    "REORDER_BYTES",
    "REORDER_SEGMENTS",
    "ROLLOVER_TS",
    "SCANNER",
    "SCANNER2",
    "SCENARIOS",
    "WEEK_SLOP",
    "Scenario",
    "by_name",
    "message",
    "write_pcap",
    "write_pcaps",
]
