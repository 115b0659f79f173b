"""TCP segments as real networks deliver them (issue 13): out of order, retransmitted,
repacketized, overlapping, or never; and the reorder bounds the decoder keeps."""

from __future__ import annotations

import random

from scapy.packet import Packet

from .. import codec, spec
from ..codec import (
    FLAG_DATA,
    FLAG_LOCAL_ACK,
    FLAG_PEER,
    FLAG_SYSINFO,
)
from .packets import (
    LISTENER,
    LISTENER2,
    LISTENER3,
    MSS,
    PROBER,
    TCP_CONTROL,
    Piece,
    TcpSession,
    Trace,
    ephemeral_port,
    framed,
    listener_port,
)
from .registry import scenario

# Out of order, retransmitted, repacketized, overlapping, or never. A correct decoder follows
# each direction by sequence number from the handshake: bytes before the next expected number
# are ignored (the first copy of a byte wins), bytes beyond a hole are held until it fills, at
# most REORDER_BYTES bytes in REORDER_SEGMENTS pieces per direction (a piece: what is left of
# one arriving segment after trimming bytes already held or fed); a segment that would take a
# direction past either bound abandons that direction (nothing more of it is decoded; the
# session is not marked as not-Conficker).

_DECODER = spec.load().decoder
REORDER_BYTES: int = getattr(_DECODER, "reorder_bytes", 8192)
REORDER_SEGMENTS: int = getattr(_DECODER, "reorder_segments", 8)
RTO = 0.2  # seconds before a retransmission (Linux's minimum retransmission timeout)
_TCP_DATA = TCP_CONTROL | FLAG_PEER | FLAG_DATA  # 0x804D


def corrupt(data: bytes) -> bytes:
    """The same number of bytes, every one different."""
    return bytes(b ^ 0x5A for b in data)


def _frames_valid(stream: bytes) -> bool:
    """True when the stream is whole, valid length-prefixed messages and nothing else."""
    decoder = codec.TcpStreamDecoder()
    decoder.feed(stream)
    return not decoder.failed and not decoder.buffer


def _session(t: Trace, listener: str, index: int) -> TcpSession:
    dport = listener_port(listener, t.now, index)
    return t.tcp(PROBER, ephemeral_port(t.rng, (dport,)), listener, dport).open()


@scenario("tcp-reorder-first-segment", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_first_segment(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) whose client sends one control
    message (flags 0x808D: peer + system-info + noise, 300 bytes with its length prefix) in
    two segments that arrive in the wrong order: bytes 150-299 first, then bytes 0-149 (the
    direction's first segment arrives second: the first bytes that arrive do not start a
    frame). A correct detector holds the second part and reports one TCP control message, on
    the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER, 0)
    msg = framed(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, 300)
    s.send_pieces(True, msg, [(150, 300), (0, 150)])
    s.close()
    return t.packets


@scenario("tcp-reorder-middle", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_reorder_middle(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2): the client sends a control
    message (0x8005, 40 bytes) in its own segment, then a data transfer (0x804D, data block of
    600 bytes, 640 bytes framed) in three segments of which the third arrives before the second
    (bytes 40-239, 480-679, then 240-479). A correct detector reports one TCP control and one
    TCP data message, the data transfer on the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 2)
    ctl = framed(rng, TCP_CONTROL, 40)
    data = framed(rng, _TCP_DATA, 640, data=600)
    stream = ctl + data
    s.send_pieces(True, stream, [(0, 40), (40, 240), (480, 680), (240, 480)])
    s.close()
    return t.packets


@scenario("tcp-retransmit-exact", tcp_control=1, tcp_data=2, attempts={PROBER: 1})
def _tcp_retransmit_exact(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 2) whose client sends a control
    message (0x8005) and two data transfers (0x804D, 300 data bytes each), each in its own
    segment; the control message's segment and the first data transfer's are each sent again
    (same seq, same bytes) 0.2 s after the receiver acked them (spurious retransmissions):
    segments C, C, D1, D1, D2. A correct detector reports one TCP control message and two TCP
    data messages (D1 once, on its first copy; the retransmissions are neither new messages
    nor a reason to stop decoding)."""
    t = Trace(rng)
    s = _session(t, LISTENER, 2)
    ctl = framed(rng, TCP_CONTROL, 60)
    d1 = framed(rng, _TCP_DATA, 340, data=300)
    d2 = framed(rng, _TCP_DATA, 340, data=300)
    a, b = len(ctl), len(ctl) + len(d1)
    pieces: list[Piece] = [(0, a), (0, a, RTO), (a, b), (a, b, RTO), (b, b + len(d2))]
    s.send_pieces(True, ctl + d1 + d2, pieces)
    s.close()
    return t.packets


@scenario("tcp-retransmit-partial", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_retransmit_partial(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0): the client's stream is a control
    message (0x8005, 100 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-249 (the control message and the start of the data transfer); 0.2 s
    later bytes 60-159 are sent again (part of segment 1: the end of the control message and
    the data transfer's first bytes); segment 2 holds bytes 250-539. A correct detector ignores
    the already-seen bytes and reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER3, 0)
    stream = framed(rng, TCP_CONTROL, 100) + framed(rng, _TCP_DATA, 440, data=400)
    s.send_pieces(True, stream, [(0, 250), (60, 160, RTO), (250, 540)])
    s.close()
    return t.packets


@scenario("tcp-repacketized", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_repacketized(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0): the client's stream is a control
    message (0x8005, 100 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-249; 0.2 s later one repacketized segment resends bytes 150-249
    together with the new bytes 250-539 that complete the data transfer. A correct detector
    feeds only the new bytes and reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER, 0)
    stream = framed(rng, TCP_CONTROL, 100) + framed(rng, _TCP_DATA, 440, data=400)
    s.send_pieces(True, stream, [(0, 250), (150, 540, RTO)])
    s.close()
    return t.packets


@scenario("tcp-overlap-fed-first", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_overlap_fed_first(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 0): the client's stream is a control
    message (0x8005, 60 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-259, in sequence. Segment 2 starts at byte 160 and runs to the end,
    but its copy of bytes 160-259 (inside the data block) differs from segment 1's: the data
    transfer is valid only with the first copy. A correct detector keeps the first copy and
    reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 0)
    stream = framed(rng, TCP_CONTROL, 60) + framed(rng, _TCP_DATA, 440, data=400)
    later = corrupt(stream[160:260]) + stream[260:]
    assert not _frames_valid(stream[:160] + later), "the later copy must spoil the message"
    s.send_pieces(True, stream, [(0, 260), (160, later)])
    s.close()
    return t.packets


@scenario("tcp-overlap-held-first", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_overlap_held_first(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 2): the client's stream is a control
    message (0x8005, 60 bytes framed, its own segment) and a data transfer (0x804D, 400 data
    bytes, 440 framed). Then, beyond a hole, bytes 260-499 arrive (held); then a segment with
    bytes 160-499 whose bytes 160-259 are new and whose copy of 260-499 differs from the one
    held; then bytes 60-159 fill the hole. The data transfer is valid only with the first
    copy of every byte. A correct detector keeps the first held copy and reports one TCP
    control and one TCP data message, on the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER3, 2)
    stream = framed(rng, TCP_CONTROL, 60) + framed(rng, _TCP_DATA, 440, data=400)
    later = stream[160:260] + corrupt(stream[260:])
    assert not _frames_valid(stream[:160] + later), "the later copy must spoil the message"
    s.send_pieces(True, stream, [(0, 60), (260, 500), (160, later), (60, 160)])
    s.close()
    return t.packets


@scenario("tcp-spurious-retransmit", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_spurious_retransmit(rng: random.Random) -> list[Packet]:
    """Issue 13's report: a TCP session to 203.0.113.200's TCP port (index 2) whose client
    sends a control message (0x8005, 200 bytes framed) in two segments (bytes 0-99, 100-199),
    both acked; 0.2 s later the first segment is sent again (a spurious retransmission: its
    length prefix would start a 200-byte frame if fed again); then a data transfer (0x804D,
    500 data bytes) in its own segment. A correct detector reports one TCP control and one TCP
    data message."""
    t = Trace(rng)
    s = _session(t, LISTENER, 2)
    stream = framed(rng, TCP_CONTROL, 200) + framed(rng, _TCP_DATA, 540, data=500)
    s.send_pieces(True, stream, [(0, 100), (100, 200), (0, 100, RTO), (200, 740)])
    s.close()
    return t.packets


_HOLE = 40  # the first segment of a reorder-bound message: length prefix, key, flags, checksum


def _bound_bytes(rng: random.Random, held: int, listener: str, index: int) -> list[Packet]:
    """One control message (0x8005, noise filling it) of _HOLE + `held` bytes: its first
    _HOLE bytes are the hole, the rest arrive first in MSS-sized segments, then the hole fills.
    Past REORDER_BYTES held, the server then answers with a control message of its own."""
    t = Trace(rng)
    s = _session(t, listener, index)
    msg = framed(rng, TCP_CONTROL, _HOLE + held)
    starts = list(range(_HOLE, len(msg), MSS))
    pieces: list[Piece] = [(a, min(a + MSS, len(msg))) for a in starts]
    assert len(pieces) <= REORDER_SEGMENTS
    s.send_pieces(True, msg, [*pieces, (0, _HOLE)])
    if held > REORDER_BYTES:
        s.send(False, framed(rng, TCP_CONTROL | FLAG_LOCAL_ACK, 60))
    s.close()
    return t.packets


@scenario("tcp-reorder-bytes-limit", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_bytes_limit(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) whose client sends one control
    message (0x8005, 8232 bytes framed, nearly all noise) whose first 40 bytes arrive last:
    the 8192 bytes behind them come first, in 6 segments, exactly the decoder's bound of held
    bytes (decoder.reorder_bytes). A correct detector holds them all and reports one TCP
    control message, on the packet that fills the hole."""
    return _bound_bytes(rng, REORDER_BYTES, LISTENER, 0)


@scenario("tcp-reorder-bytes-over", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_bytes_over(rng: random.Random) -> list[Packet]:
    """As tcp-reorder-bytes-limit (to 203.0.113.77's TCP port, index 0), but the client's
    message is one byte longer: 8193 bytes arrive ahead of the hole, one past the bound. Its
    last held segment abandons the client direction: the message is not reported, and the
    session is not marked as not-Conficker, so the server's answer that follows (flags 0x8007,
    in sequence) is. A correct detector reports one TCP control message (the server's)."""
    return _bound_bytes(rng, REORDER_BYTES + 1, LISTENER2, 0)


def _bound_pieces(rng: random.Random, held: int, listener: str, index: int) -> list[Packet]:
    """One control message (0x808D, peer + system-info + noise) in 1 + `held` segments of 50
    bytes: the first is the hole, the others arrive first, last one first, then the hole
    fills. Past REORDER_SEGMENTS pieces, the server then answers with a control message."""
    t = Trace(rng)
    s = _session(t, listener, index)
    msg = framed(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, 50 * (1 + held))
    pieces: list[Piece] = [(50 * i, 50 * i + 50) for i in range(held, 0, -1)]
    assert sum(b - a for a, b in pieces) <= REORDER_BYTES
    s.send_pieces(True, msg, [*pieces, (0, 50)])
    if held > REORDER_SEGMENTS:
        s.send(False, framed(rng, TCP_CONTROL | FLAG_LOCAL_ACK, 60))
    s.close()
    return t.packets


@scenario("tcp-reorder-segments-limit", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_segments_limit(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0) whose client sends one control
    message (0x808D, 450 bytes framed) as nine 50-byte segments: the last eight arrive first,
    in reverse order, exactly the decoder's bound of held pieces (decoder.reorder_segments),
    then the first. A correct detector reports one TCP control message, on the packet that
    fills the hole."""
    return _bound_pieces(rng, REORDER_SEGMENTS, LISTENER3, 0)


@scenario("tcp-reorder-segments-over", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_segments_over(rng: random.Random) -> list[Packet]:
    """As tcp-reorder-segments-limit (to 203.0.113.200's TCP port, index 2), but the message
    (500 bytes framed) is ten segments: nine arrive ahead of the hole, one piece past the
    bound. The ninth abandons the client direction: the message is not reported, and the
    session is not marked as not-Conficker, so the server's answer that follows (flags
    0x8007, in sequence) is. A correct detector reports one TCP control message (the
    server's)."""
    return _bound_pieces(rng, REORDER_SEGMENTS + 1, LISTENER, 2)


@scenario("neg-tcp-gap-never-fills", attempts={PROBER: 1})
def _neg_tcp_gap_never_fills(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2) whose client stream is a control
    message (0x8005, 200 bytes framed) and a data transfer (0x804D, 300 data bytes, 340
    framed), but the segment with bytes 0-49 is never sent: bytes 50-199 and then the whole
    data transfer (bytes 200-539, frame-aligned and valid on its own) arrive beyond the hole;
    the receiver keeps acking byte 0; the client gives up with a RST. A correct detector
    reports nothing (held bytes are never decoded) and raises no error."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 2)
    stream = framed(rng, TCP_CONTROL, 200) + framed(rng, _TCP_DATA, 340, data=300)
    assert _frames_valid(stream[200:])
    s.send_pieces(True, stream, [(50, 200), (200, 540), (200, 540, RTO)])
    s.abort(True)
    return t.packets
