"""Positive scenarios: UDP probes, replies, data transfers, bursts; TCP sessions whose
messages arrive whole, split or in several segments."""

from __future__ import annotations

import random

from scapy.packet import Packet

from ..codec import (
    FLAG_DATA,
    FLAG_LOCAL_ACK,
    FLAG_PEER,
    FLAG_SYSINFO,
    encode,
    encode_tcp,
)
from .packets import (
    CONTROL,
    LISTENER,
    LISTENER2,
    LISTENER3,
    PROBER,
    PROBER2,
    PROBER3,
    TCP_CONTROL,
    UDP_INDEXES,
    Trace,
    doc_address,
    ephemeral_port,
    listener_port,
    message,
)
from .registry import scenario


@scenario("udp-probe", udp_control=1, attempts={PROBER: 1})
def _udp_probe(rng: random.Random) -> list[Packet]:
    """One UDP probe (flags 0x8001, no optional blocks, no noise) from 192.0.2.10 to
    203.0.113.200's UDP listener port (index 1). A correct detector reports one UDP control
    message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 1)
    sport = ephemeral_port(rng, (dport,))
    t.udp(PROBER, sport, LISTENER, dport, encode(message(rng, CONTROL)))
    return t.packets


@scenario("udp-reply-sysinfo", udp_control=2, attempts={PROBER: 1})
def _udp_reply_sysinfo(rng: random.Random) -> list[Packet]:
    """A UDP probe (0x8001) to 203.0.113.200's UDP port (index 3) and the listener's reply
    from that port back to the prober (flags 0x8089: system-info block of 26 bytes and peer
    block naming the prober, some noise). Both are control messages; a correct detector reports
    two UDP control messages (probe and reply)."""
    t = Trace(rng)
    lport = listener_port(LISTENER, t.now, 3)
    sport = ephemeral_port(rng, (lport,))
    t.udp(PROBER, sport, LISTENER, lport, encode(message(rng, CONTROL)))
    reply = message(
        rng, CONTROL | FLAG_SYSINFO | FLAG_PEER, peer=(PROBER, sport), noise=rng.randrange(1, 41)
    )
    t.udp(LISTENER, lport, PROBER, sport, encode(reply), gap=0.045)
    return t.packets


@scenario("udp-data-transfer", udp_data=1, attempts={PROBER: 1})
def _udp_data_transfer(rng: random.Random) -> list[Packet]:
    """One UDP data transfer (flags 0x8049: peer block + data block of 200 bytes) from
    192.0.2.10 to 203.0.113.200's UDP port (index 1). A correct detector reports one UDP data
    message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 1)
    sport = ephemeral_port(rng, (dport,))
    msg = message(rng, CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(200))
    t.udp(PROBER, sport, LISTENER, dport, encode(msg))
    return t.packets


@scenario("udp-noise", udp_control=3, attempts={PROBER: 1, PROBER2: 1, PROBER3: 1})
def _udp_noise(rng: random.Random) -> list[Packet]:
    """Three UDP probes (0x8001) from three sources (192.0.2.10/.20/.30) to three listeners
    (203.0.113.200, 203.0.113.77, 198.51.100.77) on their UDP ports (index 1, 3, 1), with
    0, then 1..40, then 1..40 random noise bytes after the checksum. A correct detector reports
    three UDP control messages."""
    t = Trace(rng)
    pairs = ((PROBER, LISTENER, 1, 0), (PROBER2, LISTENER2, 3, None), (PROBER3, LISTENER3, 1, None))
    for src, dst, index, noise in pairs:
        dport = listener_port(dst, t.now, index)
        sport = ephemeral_port(rng, (dport,))
        n = rng.randrange(1, 41) if noise is None else noise
        t.udp(src, sport, dst, dport, encode(message(rng, CONTROL, noise=n)), gap=0.013)
    return t.packets


@scenario("udp-burst", udp_control=12, attempts={PROBER: 12})
def _udp_burst(rng: random.Random) -> list[Packet]:
    """192.0.2.10 sends a UDP probe (0x8001, 0..40 noise bytes) to a different listener every
    60 s for 11 minutes: 12 probes at t = 0, 60, ..., 660 s, alternating UDP port index 1 and 3.
    A correct decoder finds 12 UDP control messages; with an alert threshold of
    `limit, track by_src, count 1, seconds 300` the expected alerts are at t = 0, 300 and 600."""
    t = Trace(rng)
    taken = {PROBER}
    sport = None
    for i in range(12):
        if i:
            t.advance(60 - 0.0002)  # emit() adds 0.0002: probes land exactly a minute apart
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, UDP_INDEXES[i % 2])
        if sport is None:
            sport = ephemeral_port(rng, (dport,))
        msg = message(rng, CONTROL, noise=rng.randrange(0, 41))
        t.udp(PROBER, sport, dst, dport, encode(msg))
    return t.packets


@scenario("tcp-session", tcp_control=2, attempts={PROBER: 1})
def _tcp_session(rng: random.Random) -> list[Packet]:
    """A TCP session from 192.0.2.10 to 203.0.113.200's TCP port (index 0): handshake, the
    client sends one control message (flags 0x8005, length-prefixed), the server replies with
    one control message (flags 0x8007), FIN teardown. A correct detector reports two TCP control
    messages (one per direction)."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    s.send(True, encode_tcp(message(rng, TCP_CONTROL, noise=rng.randrange(0, 41))))
    reply = message(rng, TCP_CONTROL | FLAG_LOCAL_ACK, noise=rng.randrange(0, 41))
    s.send(False, encode_tcp(reply))
    s.close()
    return t.packets


@scenario("tcp-multi-segment", tcp_control=3, attempts={PROBER: 1})
def _tcp_multi_segment(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2) in which a single client segment
    carries three length-prefixed control messages back to back (flags 0x8005, 0x8007 with
    noise, 0x808D with peer + system-info blocks). A correct detector reports three TCP control
    messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER2, t.now, 2)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    msgs = (
        message(rng, TCP_CONTROL),
        message(rng, TCP_CONTROL | FLAG_LOCAL_ACK, noise=rng.randrange(1, 41)),
        message(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO),
    )
    s.send(True, b"".join(encode_tcp(m) for m in msgs))
    s.close()
    return t.packets


@scenario("tcp-split", tcp_control=2, attempts={PROBER: 1})
def _tcp_split(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 2) with two client control messages
    split across segments. Message 1 (flags 0x808D: peer + system-info + noise, 300 bytes with
    its length prefix) is split in the middle: segment 1 holds its first 150 bytes. Segment 2
    holds the rest of message 1 plus only the FIRST byte of message 2's 2-byte length prefix;
    segment 3 holds message 2's second length byte and body (flags 0x8005). Each segment is
    acked. A correct detector reassembles and reports two TCP control messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 2)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    # 2 (length) + 8 (key) + 2 (flags) + 6 (peer) + 26 (sysinfo) + 4 (checksum) = 48 + noise
    first = encode_tcp(message(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=300 - 48))
    second = encode_tcp(message(rng, TCP_CONTROL, noise=rng.randrange(0, 41)))
    assert len(first) == 300
    s.send(True, first + second, cuts=[150, len(first) + 1], ack_every=1)
    s.close()
    return t.packets


@scenario("tcp-data-transfer", tcp_data=2, attempts={PROBER2: 1})
def _tcp_data_transfer(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0) carrying two data transfers from
    client to server (flags 0x804D: peer + data block of 500 bytes), each in its own segment and
    acked. A correct detector reports two TCP data messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER3, t.now, 0)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    for _ in range(2):
        msg = message(rng, TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(500))
        s.send(True, encode_tcp(msg))
    s.close()
    return t.packets
