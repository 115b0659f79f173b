"""Scanning: sweeps of computed ports, the week rollover, P2P traffic on other ports."""

from __future__ import annotations

import random

from scapy.packet import Packet

from .. import codec
from ..codec import (
    encode,
    encode_tcp,
)
from .packets import (
    CONTROL,
    LISTENER,
    LISTENER3,
    PROBER,
    PROBER2,
    ROLLOVER_TS,
    SCANNER,
    SCANNER2,
    TCP_CONTROL,
    TCP_INDEXES,
    UDP_INDEXES,
    WEEK_SLOP,
    Trace,
    doc_address,
    ephemeral_port,
    high_port,
    listener_port,
    message,
)
from .registry import scenario


def other_high_port(rng: random.Random, ip: str, ts: float) -> int:
    """A non-blacklisted high port that is none of ip's computed ports around ts."""
    weeks = {codec.epoch_week(ts + d) for d in (-WEEK_SLOP, 0, WEEK_SLOP)}
    computed = {p for w in weeks for p in codec.ports(ip, w)}
    while True:
        port = high_port(rng)
        if port not in computed:
            return port


@scenario("scan-sweep", udp_control=5, attempts={SCANNER: 11})
def _scan_sweep(rng: random.Random) -> list[Packet]:
    """192.0.2.66 looks for peers, one attempt every 2 s: bare SYNs to the computed TCP port
    (index 0 or 2) of 6 fresh addresses, two of them retransmitted 3 s later with the same seq
    (same connection) and one answered by a RST; UDP probes (0x8001) to the computed UDP port
    (index 1 or 3) of 5 fresh addresses. Not attempts: a SYN to a fresh address's
    non-computed high port, a SYN to a fresh address's computed UDP port (index 1), a datagram
    of random bytes to a fresh address's computed UDP port (no message) and one to a fresh
    address's computed TCP port. A correct
    detector reports 5 UDP control messages and counts 11 attempts (6 connections, 5 datagrams)."""
    t = Trace(rng)
    taken = {SCANNER}
    retransmit = []
    for i in range(6):
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, TCP_INDEXES[i % 2])
        sport, seq = ephemeral_port(rng, (dport,)), rng.getrandbits(32)
        t.syn(SCANNER, sport, dst, dport, seq, gap=2)
        if i in (1, 4):
            retransmit.append((sport, dst, dport, seq))
        if i == 2:
            t.rst(dst, dport, SCANNER, sport, (seq + 1) & 0xFFFFFFFF, gap=0.03)
    for sport, dst, dport, seq in retransmit:
        t.syn(SCANNER, sport, dst, dport, seq, gap=3)
    for i in range(5):
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, UDP_INDEXES[i % 2])
        msg = message(rng, CONTROL, noise=rng.randrange(0, 41))
        t.udp(SCANNER, ephemeral_port(rng, (dport,)), dst, dport, encode(msg), gap=2)
    dst = doc_address(rng, taken)
    t.syn(SCANNER, ephemeral_port(rng), dst, other_high_port(rng, dst, t.now), 1, gap=2)
    dst = doc_address(rng, taken)
    udp_port = listener_port(dst, t.now, 1)
    assert udp_port not in codec.ports_at(dst, t.now)[0::2]
    t.syn(SCANNER, ephemeral_port(rng), dst, udp_port, 2, gap=2)
    dst = doc_address(rng, taken)
    t.udp(SCANNER, ephemeral_port(rng), dst, listener_port(dst, t.now, 3), rng.randbytes(40), 2)
    dst = doc_address(rng, taken)
    tcp_port = listener_port(dst, t.now, 0)
    assert tcp_port not in codec.ports_at(dst, t.now)[1::2]
    t.udp(SCANNER, ephemeral_port(rng), dst, tcp_port, rng.randbytes(120), gap=2)
    return t.packets


def _weekly_tcp_port(ip: str, ts: float, weeks: int) -> int:
    """ip's weekly TCP port (index 2) in the epoch week `weeks` away from ts's."""
    return codec.ports(ip, codec.epoch_week(ts) + weeks)[2]


@scenario("scan-week-rollover", udp_control=1, attempts={SCANNER2: 10})
def _scan_week_rollover(rng: random.Random) -> list[Packet]:
    """192.0.2.67, whose clock drifts, scans across the week rollover of Monday 2026-11-30
    00:00 UTC (R). Bare SYNs, each to a fresh address's weekly TCP port (index 2), which differs
    from week to week: at R-1200 s, 2 to next week's port (20 minutes early: not counted);
    at R-600, 3 to this week's (counted); at R-300, 2 to next week's (within the 15-minute
    slop: counted); at R+300, 2 to the previous week's (within the slop: counted); at R+600,
    2 to the new week's (counted); at R+1200, 2 to the previous week's (not counted); then at
    R+1210 one UDP probe (0x8001) to a fresh address's fixed UDP port (index 1, the same every
    week: counted). A correct detector reports 1 UDP control message and counts 10 attempts."""
    t = Trace(rng)
    taken = {SCANNER2}
    plan = ((-1200, 2, +1), (-600, 3, 0), (-300, 2, +1), (300, 2, -1), (600, 2, 0), (1200, 2, -1))
    for offset, count, weeks in plan:
        t.at(ROLLOVER_TS + offset)
        for _ in range(count):
            dst = doc_address(rng, taken)
            dport = _weekly_tcp_port(dst, t.now, weeks)
            assert len({_weekly_tcp_port(dst, t.now, w) for w in (-1, 0, 1)}) == 3
            t.syn(SCANNER2, ephemeral_port(rng, (dport,)), dst, dport, rng.getrandbits(32), 0.5)
    t.at(ROLLOVER_TS + 1210)
    dst = doc_address(rng, taken)
    dport = listener_port(dst, t.now, 1)
    t.udp(SCANNER2, ephemeral_port(rng, (dport,)), dst, dport, encode(message(rng, CONTROL)))
    return t.packets


@scenario("p2p-other-ports", udp_control=1, tcp_control=1)
def _p2p_other_ports(rng: random.Random) -> list[Packet]:
    """Conficker messages on ports the generator does not give the listener (a peer behind a
    port-forwarding NAT): a UDP probe (0x8001) from 192.0.2.10 to 203.0.113.200 on a
    non-blacklisted high port that is none of its computed ports, and a TCP session from
    192.0.2.20 to 198.51.100.77 on such a port carrying one control message (0x8005). A correct
    detector reports one UDP and one TCP control message, neither on a computed port, and
    counts no attempt."""
    t = Trace(rng)
    dport = other_high_port(rng, LISTENER, t.now)
    t.udp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport, encode(message(rng, CONTROL)))
    dport = other_high_port(rng, LISTENER3, t.now)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    s.send(True, encode_tcp(message(rng, TCP_CONTROL)))
    s.close()
    return t.packets
