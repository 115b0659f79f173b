"""Positive scenarios: UDP probes, replies, data transfers, bursts; TCP sessions whose
messages arrive whole, split or in several segments; peer blocks and data blocks of known
content (issue 19: what the messages carry)."""

from __future__ import annotations

import random

from scapy.packet import Packet

from ..codec import (
    FLAG_DATA,
    FLAG_LOCAL_ACK,
    FLAG_PEER,
    FLAG_SYSINFO,
    Message,
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
    pe_like,
)
from .registry import scenario

# Known content (issue 19): the data blocks and announced peers of the scenarios below, which
# tests/unit and tests/engine/cases.yaml check byte for byte. The peers are listener ports of
# PROTOCOL.md's port vectors (week 2968).
BLOCK_UDP = pe_like(2009, 1200)  # one datagram
BLOCK_TCP = pe_like(2026, 4000)  # three segments at the MSS, sent twice
PEER_UDP_DATA = ("192.0.2.1", 38636)
PEER_UDP_CONTROL = ("198.51.100.77", 59288)
PEER_TCP_CONTROL = ("203.0.113.200", 43880)
PEER_TCP_DATA = ("192.0.2.1", 17075)
# PROTOCOL.md's UDP data-transfer vector: peer 127.0.0.1:40000 (u32 0x0100007F), data_flags 1,
# 15 bytes of data, 5 noise bytes 0xAA.
VECTOR = Message(
    0xDEADBEEF,
    0x01020304,
    CONTROL | FLAG_PEER | FLAG_DATA,
    peer_ip="127.0.0.1",
    peer_port=40000,
    data_flags=1,
    data=b"hello conficker",
    noise=b"\xaa" * 5,
)


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


@scenario("udp-peer-data", udp_control=1, udp_data=1, attempts={PROBER: 1, PROBER2: 1})
def _udp_peer_data(rng: random.Random) -> list[Packet]:
    """Peer and data blocks of known content over UDP. 192.0.2.10 sends 203.0.113.200's UDP
    port (index 1) one data transfer in one datagram (flags 0x8049, peer 192.0.2.1:38636,
    data_flags 0x01, data block BLOCK_UDP: a 1,200-byte PE-like file); 192.0.2.20 sends
    203.0.113.77's UDP port (index 3) a control message with a peer block (flags 0x8009, peer
    198.51.100.77:59288). A correct detector reports one UDP data and one UDP control message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 1)
    sport = ephemeral_port(rng, (dport,))
    data = message(
        rng, CONTROL | FLAG_PEER | FLAG_DATA, peer=PEER_UDP_DATA, data=BLOCK_UDP, data_flags=1
    )
    t.udp(PROBER, sport, LISTENER, dport, encode(data))
    dport = listener_port(LISTENER2, t.now, 3)
    sport = ephemeral_port(rng, (dport,))
    control = message(rng, CONTROL | FLAG_PEER, peer=PEER_UDP_CONTROL, noise=rng.randrange(1, 41))
    t.udp(PROBER2, sport, LISTENER2, dport, encode(control), gap=0.01)
    return t.packets


@scenario("udp-data-vector", udp_data=1, attempts={PROBER3: 1})
def _udp_data_vector(rng: random.Random) -> list[Packet]:
    """PROTOCOL.md's UDP data-transfer vector as the payload of one datagram from 192.0.2.30 to
    203.0.113.200's UDP port (index 3): flags 0x8049, peer 127.0.0.1:40000, data_flags 0x01, the
    15 bytes "hello conficker" (shorter than a 16-byte head), 5 noise bytes. A correct detector
    reports one UDP data message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 3)
    t.udp(PROBER3, ephemeral_port(rng, (dport,)), LISTENER, dport, encode(VECTOR))
    return t.packets


@scenario("tcp-peer-data", tcp_control=1, tcp_data=2, attempts={PROBER3: 1})
def _tcp_peer_data(rng: random.Random) -> list[Packet]:
    """Peer and data blocks of known content over TCP: a session from 192.0.2.30 to
    198.51.100.77's TCP port (index 2). The client sends a control message with a peer block
    (flags 0x800D, peer 203.0.113.200:43880), then the same data block twice, each time in a
    message of its own (flags 0x804D, peer 192.0.2.1:17075, data_flags 0x02, data block
    BLOCK_TCP: a 4,000-byte PE-like file, no noise) cut at the MSS into three segments. A
    correct detector reports one TCP control message and two TCP data messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER3, t.now, 2)
    s = t.tcp(PROBER3, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    s.send(True, encode_tcp(message(rng, TCP_CONTROL | FLAG_PEER, peer=PEER_TCP_CONTROL)))
    for _ in range(2):
        msg = message(
            rng,
            TCP_CONTROL | FLAG_PEER | FLAG_DATA,
            peer=PEER_TCP_DATA,
            data=BLOCK_TCP,
            data_flags=2,
        )
        framed = encode_tcp(msg)
        assert len(framed) == 2 + 8 + 2 + 6 + 3 + len(BLOCK_TCP) + 4  # three segments
        s.send(True, framed)
    s.close()
    return t.packets
