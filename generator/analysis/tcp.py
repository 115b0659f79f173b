"""TCP stream tracking for triage: per-direction in-order reassembly into the codec's
TcpStreamDecoder, with the Lua decoder's semantics and the bounds of Limits."""

from __future__ import annotations

from collections import Counter, OrderedDict

from ..codec import (
    Message,
    TcpStreamDecoder,
    message_verdict,
)
from .limits import Limits

_M32 = 0xFFFFFFFF
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def _rel(seq: int, base: int) -> int:
    """seq - base in 32-bit sequence space, as a signed number."""
    diff = (seq - base) & _M32
    return diff - (1 << 32) if diff & 0x80000000 else diff


class _Direction:
    """One direction of a connection: the next expected sequence number, the decoder (None
    once the direction is finished: not Conficker, closed, or given up), and the pieces held
    beyond a gap: (sequence number, bytes), disjoint, in sequence order, each past next_seq."""

    __slots__ = (
        "isn",
        "next_seq",
        "decoder",
        "fed",
        "checked_at",
        "held",
        "held_bytes",
        "counted",
    )

    def __init__(self) -> None:
        self.isn: int | None = None
        self.next_seq: int | None = None
        self.decoder: TcpStreamDecoder | None = TcpStreamDecoder()
        self.fed = 0  # bytes fed to the decoder so far
        self.checked_at = -1  # stream offset of the frame head that message_verdict accepted
        self.held: list[tuple[int, bytes]] = []
        self.held_bytes = 0
        self.counted = 0  # bytes of this direction included in TcpTracker.buffered

    @property
    def buffered(self) -> int:
        if self.decoder is None:
            return 0
        return len(self.decoder.buffer) + self.held_bytes


class Connection:
    """A tracked TCP connection; dirs[0] is the direction from the lower (ip, port) end."""

    __slots__ = ("dirs", "scan_counted", "accept_counted")

    def __init__(self) -> None:
        self.dirs = (_Direction(), _Direction())
        self.scan_counted = False
        self.accept_counted = False


class TcpTracker:
    """Per-direction in-order reassembly into TcpStreamDecoders, bounded by Limits, with the
    Lua decoder's semantics.

    Each byte is fed once, in sequence order, and the first copy of a byte that arrives wins:
    bytes before the next expected sequence number (retransmitted, overlapping) are trimmed;
    bytes beyond a gap are held until it fills, less those already held, so an arriving segment
    leaves a piece in each hole it covers. At most Limits.reorder_bytes bytes in
    Limits.reorder_segments pieces are held per direction: a segment that would take the held
    bytes or pieces past either gives the direction up (no verdict; the rest of it is ignored).
    FIN or RST frees a direction's buffers; the connection stays as a small record (so late
    retransmissions are not decoded twice) at the eviction end of the LRU order: past a cap,
    finished connections go first, then the least recently used live ones.
    """

    def __init__(self, limits: Limits, stats: Counter[str]):
        self.limits = limits
        self.stats = stats
        self.conns: OrderedDict[tuple, Connection] = OrderedDict()
        self.buffered = 0
        self.peak_connections = 0
        self.peak_buffered = 0

    def segment(
        self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, flags: int, data: bytes
    ) -> tuple[Connection | None, list[Message]]:
        a, b = (src, sport), (dst, dport)
        forward = a <= b
        key = (a, b) if forward else (b, a)
        side = 0 if forward else 1
        conn = self.conns.get(key)
        syn = flags & TCP_SYN
        if conn is not None and syn and conn.dirs[side].isn not in (None, seq):
            self._forget(key)  # a new connection on the same ports
            conn = None
        if conn is None:
            if flags & TCP_RST or not (data or syn):
                return None, []
            conn = self.conns[key] = Connection()
            self._evict()
        else:
            self.conns.move_to_end(key)
        direction = conn.dirs[side]
        if syn and direction.isn is None:
            direction.isn = seq
            direction.next_seq = (seq + 1) & _M32
        msgs: list[Message] = []
        if data and direction.decoder is not None:
            start = (seq + 1) & _M32 if syn else seq
            msgs = self._deliver(direction, start, data)
            self._account(direction)
            if self.buffered > self.limits.max_buffered:
                self._evict()
            self.peak_buffered = max(self.peak_buffered, self.buffered)
        if flags & TCP_RST:
            self._finish(conn.dirs[0])
            self._finish(conn.dirs[1])
        elif flags & TCP_FIN:
            self._finish(direction)
        if conn.dirs[0].decoder is None and conn.dirs[1].decoder is None:
            self.conns.move_to_end(key, last=False)  # nothing left to decode: evict it first
        return conn, msgs

    def _deliver(self, direction: _Direction, seq: int, data: bytes) -> list[Message]:
        if direction.next_seq is None:  # picked up mid-stream: trust the first segment seen
            direction.next_seq = seq
        ahead = _rel(seq, direction.next_seq)
        if ahead < 0:
            self.stats["retransmitted"] += 1
            if ahead + len(data) <= 0:
                return []
            data = data[-ahead:]
            ahead = 0
        if ahead == 0 and not direction.held:
            return self._feed(direction, data)
        held, added = self._merge(direction, ahead, data)
        if ahead > 0:
            self.stats["out_of_order"] += 1
            limits = self.limits
            if (
                direction.held_bytes + added > limits.reorder_bytes
                or len(held) > limits.reorder_segments
            ):
                self.stats["gaps"] += 1  # past the reorder bound: the direction is given up
                self._finish(direction)
                return []
        direction.held = held
        direction.held_bytes += added
        out: list[Message] = []
        while held and direction.decoder is not None:  # the pieces now in reach, in order
            at = _rel(held[0][0], direction.next_seq)
            if at > 0:
                break
            piece = held.pop(0)[1]
            direction.held_bytes -= len(piece)
            if at + len(piece) > 0:
                out += self._feed(direction, piece[-at:] if at else piece)
        return out

    @staticmethod
    def _merge(
        direction: _Direction, ahead: int, data: bytes
    ) -> tuple[list[tuple[int, bytes]], int]:
        """The held pieces with what `data` (starting `ahead` bytes past next_seq) adds in
        front of, between and behind them (held bytes win), and the number of bytes added."""
        base = direction.next_seq
        assert base is not None
        out: list[tuple[int, bytes]] = []
        added = 0
        cur, stop = ahead, ahead + len(data)
        for piece in direction.held:
            at = _rel(piece[0], base)
            if cur < stop and at > cur:
                end = min(at, stop)
                out.append(((base + cur) & _M32, data[cur - ahead : end - ahead]))
                added += end - cur
            out.append(piece)
            cur = max(cur, at + len(piece[1]))
        if cur < stop:
            out.append(((base + cur) & _M32, data[cur - ahead :]))
            added += stop - cur
        return out, added

    def _feed(self, direction: _Direction, data: bytes) -> list[Message]:
        decoder = direction.decoder
        assert decoder is not None and direction.next_seq is not None
        msgs = decoder.feed(data)
        direction.next_seq = (direction.next_seq + len(data)) & _M32
        direction.fed += len(data)
        if decoder.failed:
            self._finish(direction)
            return msgs
        buf = decoder.buffer
        head = direction.fed - len(buf)
        if len(buf) >= 2 and head != direction.checked_at:
            verdict = message_verdict(buf, buf[0] | buf[1] << 8, start=2)
            if verdict is False:
                self._finish(direction)  # the frame in flight cannot decode: not Conficker
            elif verdict:
                direction.checked_at = head
        return msgs

    def _finish(self, direction: _Direction) -> None:
        """Free a direction's buffers; it decodes nothing more."""
        direction.decoder = None
        direction.held = []
        direction.held_bytes = 0
        self._account(direction)

    def _account(self, direction: _Direction) -> None:
        """Bring the total of buffered bytes up to date with this direction's buffers."""
        self.buffered += direction.buffered - direction.counted
        direction.counted = direction.buffered

    def _forget(self, key: tuple) -> None:
        conn = self.conns.pop(key)
        self._finish(conn.dirs[0])
        self._finish(conn.dirs[1])

    def _evict(self) -> None:
        """Drop least recently used connections while over a cap (never the newest one)."""
        limits = self.limits
        while len(self.conns) > 1 and (
            len(self.conns) > limits.max_connections or self.buffered > limits.max_buffered
        ):
            key = next(iter(self.conns))
            conn = self.conns[key]
            if conn.dirs[0].decoder is not None or conn.dirs[1].decoder is not None:
                self.stats["evicted"] += 1
            self._forget(key)
        self.peak_connections = max(self.peak_connections, len(self.conns))
