"""Large inputs: a TCP message near the 64 KiB frame limit, a fragmented UDP datagram."""

from __future__ import annotations

import random

from scapy.packet import Packet

from ..codec import (
    FLAG_DATA,
    FLAG_PEER,
    encode,
    encode_tcp,
)
from .packets import (
    CONTROL,
    LISTENER,
    PROBER,
    TCP_CONTROL,
    Trace,
    ephemeral_port,
    listener_port,
    message,
)
from .registry import scenario


@scenario("tcp-large-message", large=True, tcp_data=1, attempts={PROBER: 1})
def _tcp_large_message(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) carrying one message of exactly
    65535 bytes (length prefix 0xFFFF; flags 0x804D, data block of 65512 bytes filling it),
    sent as 1460-byte segments, the server ACKing every second segment. A correct detector
    reports one TCP data message and must not hit Lua memory or instruction limits."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    # 8 (key) + 2 (flags) + 6 (peer) + 3 (data header) + L + 4 (checksum) = 65535
    msg = message(rng, TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(65535 - 23))
    framed = encode_tcp(msg)
    assert framed[:2] == b"\xff\xff" and len(framed) == 65537
    s.send(True, framed)
    s.close()
    return t.packets


@scenario("udp-large-fragmented", large=True, udp_data=1, attempts={PROBER: 1})
def _udp_large_fragmented(rng: random.Random) -> list[Packet]:
    """One UDP datagram of 65000 payload bytes to 203.0.113.200's UDP port (index 3) holding
    a valid data transfer (flags 0x8049, data block of 64977 bytes), sent as 44 IP fragments of
    at most 1480 bytes. A correct detector (after IP defragmentation) reports one UDP data
    message and must not hit Lua limits."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 3)
    sport = ephemeral_port(rng, (dport,))
    # 8 (key) + 2 (flags) + 6 (peer) + 3 (data header) + L + 4 (checksum) = 65000
    msg = message(rng, CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(65000 - 23))
    payload = encode(msg)
    assert len(payload) == 65000
    t.udp_fragmented(PROBER, sport, LISTENER, dport, payload)
    return t.packets
