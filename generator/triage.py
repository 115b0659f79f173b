"""Analyst commands: the port table of a host (`cfp2p ports`) and offline triage of a capture
with the reference codec (`cfp2p decode`).

Triage reads a capture with generator.capture, reassembles IPv4 fragments and TCP streams
(per direction, in sequence order) and decodes every UDP payload and every length-prefixed TCP
message with generator.protocol. Memory stays bounded whatever the capture's size: the number
of tracked TCP connections, the bytes buffered per direction and in total, and the IP fragments
held are all capped (Limits); past a cap the least recently used state is dropped.

A message's listener is the end whose port is one of its computed ports (PROTOCOL.md §1):
the destination when the destination port matches, else the source (a reply comes from the
listener's port). Ports are computed for the packet time's epoch week and, within 15 minutes
of a Monday 00:00 UTC rollover, for the neighbouring week too.

The summary counts, per host, the attempts the scan signature counts: a scanning source sent
UDP datagrams holding a valid message to other hosts' computed UDP ports, or opened TCP
connections (SYN, once per connection, message or not) to their computed TCP ports; an
answering listener replied from its computed UDP port with a valid message, or accepted (SYN/ACK)
on its computed TCP port.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from . import capture, spec
from .protocol import (
    CHECKSUM_SIZE,
    EPOCH_OFFSET,
    FLAG_DATA,
    FLAG_PEER,
    FLAG_SYSINFO,
    FLAG_UNKNOWN0,
    FLAG_UNKNOWN1,
    KEY_SIZE,
    MIN_MESSAGE,
    SYSINFO_SIZE,
    WEEK_SECONDS,
    DecodeError,
    Message,
    TcpStreamDecoder,
    checksum,
    decode,
    epoch_week,
    is_blacklisted,
    keystream,
    ports,
)

SLOP_SECONDS = 900  # accept the neighbouring week this close to a rollover (clock drift)
EXPECT_KEYS = ("udp_control", "udp_data", "tcp_control", "tcp_data")

_M32 = 0xFFFFFFFF
_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10
_PROTO_TCP, _PROTO_UDP = 6, 17
_TCP_INDEX, _UDP_INDEX = 0, 1  # index of pair A's port in ports(); pair B's is +2


class ArgumentError(ValueError):
    """A command-line argument is malformed: which argument and what was expected."""

    def __init__(self, argument: str, problem: str):
        self.argument, self.problem = argument, problem
        super().__init__(f"argument {argument}: {problem}")


# --- cfp2p ports -----------------------------------------------------------------------------

_UNIX_SECONDS = re.compile(r"[+-]?\d+(\.\d*)?")
_DATETIME_MIN = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_DATETIME_MAX = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def parse_ipv4(text: str, argument: str = "IP") -> str:
    """text as a dotted-quad IPv4 address, or ArgumentError."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ArgumentError(argument, f"{text!r} is not an IPv4 address") from None


def parse_time(text: str, argument: str = "--at") -> float:
    """Unix seconds from ISO 8601 with `Z` or an offset, or from unix seconds (digits)."""
    value = text.strip()
    if _UNIX_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        if value[-1:] == "z":
            value = value[:-1] + "Z"
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ArgumentError(
                argument,
                f"{text!r} is neither an ISO 8601 time (e.g. 2026-11-26T12:00:00Z) "
                "nor unix seconds",
            ) from None
        if when.tzinfo is None:
            raise ArgumentError(
                argument, f"{text!r} has no time zone: add Z (UTC) or an offset such as +01:00"
            )
        seconds = when.timestamp()
    if not _DATETIME_MIN <= seconds <= _DATETIME_MAX:
        raise ArgumentError(argument, f"{text!r} is outside the years 1-9999")
    return seconds


def week_start(week: int) -> float:
    """Unix seconds of the Monday 00:00 UTC that starts epoch week `week`."""
    return EPOCH_OFFSET + week * WEEK_SECONDS


def port_table(ip: str, unix_seconds: float) -> dict[str, object]:
    """The `cfp2p ports --json` object: pair A (fixed) first in each list."""
    week = epoch_week(unix_seconds)
    tcp_a, udp_a, tcp_b, udp_b = ports(ip, week)
    return {"ip": ip, "week": week, "tcp": [tcp_a, tcp_b], "udp": [udp_a, udp_b]}


def format_port_table(table: dict, unix_seconds: float) -> str:
    """Human-readable port table with the week's dates, and a note near a rollover."""
    week = int(table["week"])
    start, end = _utc(week_start(week)), _utc(week_start(week + 1) - 1)
    lines = [
        f"{table['ip']}  epoch week {week}: {start:%a %Y-%m-%d %H:%M} to {end:%a %Y-%m-%d %H:%M:%S}"
        " UTC",
        "",
        f"       pair A (fixed)   pair B (week {week})",
        f"TCP    {table['tcp'][0]:<14}   {table['tcp'][1]}",
        f"UDP    {table['udp'][0]:<14}   {table['udp'][1]}",
    ]
    for other in _weeks(unix_seconds)[1:]:
        tcp_b, udp_b = ports(str(table["ip"]), other)[2:]
        lines.append(
            f"\nwithin {SLOP_SECONDS // 60} minutes of the week rollover: week {other}'s pair B is "
            f"TCP {tcp_b}, UDP {udp_b}"
        )
    return "\n".join(lines)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _weeks(unix_seconds: float) -> tuple[int, ...]:
    """The epoch week of unix_seconds, then the neighbouring one within SLOP_SECONDS of it."""
    week = epoch_week(unix_seconds)
    into = unix_seconds - week_start(week)
    if into <= SLOP_SECONDS:
        return week, week - 1
    if WEEK_SECONDS - into <= SLOP_SECONDS:
        return week, week + 1
    return (week,)


# --- cheap verdict before deciphering a whole message ----------------------------------------


def message_verdict(buf: bytes | bytearray, length: int, start: int = 0) -> bool | None:
    """Whether the `length`-byte message beginning at buf[start:] can decode.

    False: decode() of the complete message certainly fails (its layout does not fit in
    `length` bytes, or its checksum is wrong). True: the checksum matches. None: buf does not
    yet hold enough of the message to tell. Deciphers the flags, then the data length if there
    is a data block, then the body up to the checksum, never the noise, so random payloads are
    rejected after a few dozen bytes.
    """
    if length < MIN_MESSAGE:
        return False
    have = min(len(buf) - start, length)
    if have < KEY_SIZE + 2:
        return None
    key_lo, key_hi = struct.unpack_from("<II", buf, start)
    body_at = start + KEY_SIZE
    plain = _xor(buf[body_at : body_at + 2], key_lo, key_hi)
    flags = plain[0] | plain[1] << 8
    pos = 2
    if flags & FLAG_PEER:
        pos += 6
    if flags & FLAG_UNKNOWN0:
        pos += 4
    if flags & FLAG_UNKNOWN1:
        pos += 4
    if flags & FLAG_DATA:
        if KEY_SIZE + pos + 3 + CHECKSUM_SIZE > length:
            return False
        if have < KEY_SIZE + pos + 3:
            return None
        header = _xor(buf[body_at : body_at + pos + 3], key_lo, key_hi)
        pos += 3 + (header[pos + 1] | header[pos + 2] << 8)
    if flags & FLAG_SYSINFO:
        pos += SYSINFO_SIZE
    end = KEY_SIZE + pos + CHECKSUM_SIZE
    if end > length:
        return False
    if end > have:
        return None
    plain = _xor(buf[body_at : start + end], key_lo, key_hi)
    (got,) = struct.unpack_from("<I", plain, pos)
    return got == checksum(bytes(buf[start:body_at]) + plain[:pos])


def _xor(data: bytes | bytearray, key_lo: int, key_hi: int) -> bytes:
    """protocol.crypt() with the XOR done on whole integers (faster on long inputs)."""
    n = len(data)
    stream = keystream(key_lo, key_hi, n)
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")
    return mixed.to_bytes(n, "little")


# --- listener ports --------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _host_ports(ip: bytes, week: int) -> tuple[int, int, int, int]:
    return ports(socket.inet_ntoa(ip), week)


def _is_listener(ip: bytes, port: int, weeks: tuple[int, ...], index: int) -> bool:
    """True when port is one of ip's computed TCP (index 0) or UDP (index 1) ports."""
    if port < 2048 or is_blacklisted(port):  # never a listener port; skips the generator
        return False
    for week in weeks:
        computed = _host_ports(ip, week)
        if port == computed[index] or port == computed[index + 2]:
            return True
    return False


def _listener_side(
    src: bytes, sport: int, dst: bytes, dport: int, weeks: tuple[int, ...], index: int
) -> str | None:
    if _is_listener(dst, dport, weeks, index):
        return "dst"
    if _is_listener(src, sport, weeks, index):
        return "src"
    return None


# --- IPv4 fragments --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _decoder_spec() -> spec.Decoder:
    """The pack's decoder settings (spec/conficker-p2p.yaml), read once."""
    return spec.load().decoder


@dataclass(frozen=True)
class Limits:
    """Caps that keep memory bounded on any capture.

    A TCP direction holds, ahead of a gap, at most reorder_bytes bytes in at most
    reorder_segments pieces (by default the Lua decoder's decoder.reorder_bytes and
    decoder.reorder_segments); its decoder holds less than one frame (at most 65537 bytes
    with the length prefix). So a live direction buffers at most 65537 + reorder_bytes.
    """

    max_connections: int = 16384  # TCP connections tracked (LRU beyond)
    # out-of-order bytes held per TCP direction, in at most reorder_segments pieces
    reorder_bytes: int = field(default_factory=lambda: _decoder_spec().reorder_bytes)
    reorder_segments: int = field(default_factory=lambda: _decoder_spec().reorder_segments)
    # TCP bytes held in all directions together; at least two directions' worth
    # (2 * (65537 + reorder_bytes)), since the connection being fed is never evicted
    max_buffered: int = 64 * 1024 * 1024
    max_fragment_datagrams: int = 1024  # IP datagrams being reassembled at once
    max_fragment_bytes: int = 32 * 1024 * 1024  # fragment bytes held in total
    fragment_timeout: float = 30.0  # seconds (packet time) a datagram may take to complete
    max_summary_pairs: int = 1_000_000  # (host, peer) pairs remembered for the summary


class _Partial:
    __slots__ = ("pieces", "total", "size", "first_ns")

    def __init__(self, first_ns: int):
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None
        self.size = 0
        self.first_ns = first_ns


class Defragmenter:
    """IPv4 reassembly keyed by (src, dst, protocol, id), bounded in datagrams, bytes, time."""

    def __init__(self, limits: Limits, stats: Counter[str]):
        self.limits = limits
        self.stats = stats
        self.held: OrderedDict[tuple, _Partial] = OrderedDict()
        self.bytes = 0

    def add(self, key: tuple, offset: int, more: bool, data: bytes, ts_ns: int) -> bytes | None:
        """Add one fragment; return the whole IP payload once every piece is there."""
        self.stats["fragments"] += 1
        self._expire(ts_ns)
        if offset + len(data) > 65535 - 20:
            self.stats["fragments_dropped"] += 1
            self._drop(key)
            return None
        part = self.held.get(key)
        if part is None:
            part = self.held[key] = _Partial(ts_ns)
        old = part.pieces.get(offset)
        part.pieces[offset] = data
        delta = len(data) - (len(old) if old is not None else 0)
        part.size += delta
        self.bytes += delta
        if not more:
            part.total = offset + len(data)
        whole = self._complete(part)
        if whole is not None:
            self._drop(key)
            self.stats["reassembled"] += 1
            return whole
        limits = self.limits
        while self.held and (
            len(self.held) > limits.max_fragment_datagrams or self.bytes > limits.max_fragment_bytes
        ):
            self._drop(next(iter(self.held)))
            self.stats["fragments_dropped"] += 1
        return None

    @staticmethod
    def _complete(part: _Partial) -> bytes | None:
        if part.total is None:
            return None
        covered = 0
        for offset in sorted(part.pieces):
            if offset > covered:
                return None
            covered = max(covered, offset + len(part.pieces[offset]))
        if covered < part.total:
            return None
        whole = bytearray(part.total)
        for offset in sorted(part.pieces):
            piece = part.pieces[offset][: max(0, part.total - offset)]
            whole[offset : offset + len(piece)] = piece
        return bytes(whole)

    def _expire(self, ts_ns: int) -> None:
        timeout_ns = int(self.limits.fragment_timeout * 1e9)
        while self.held:
            key, part = next(iter(self.held.items()))
            if ts_ns - part.first_ns <= timeout_ns:
                return
            self._drop(key)
            self.stats["fragments_dropped"] += 1

    def _drop(self, key: tuple) -> None:
        part = self.held.pop(key, None)
        if part is not None:
            self.bytes -= part.size


# --- TCP streams -----------------------------------------------------------------------------


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
        syn = flags & _TCP_SYN
        if conn is not None and syn and conn.dirs[side].isn not in (None, seq):
            self._forget(key)  # a new connection on the same ports
            conn = None
        if conn is None:
            if flags & _TCP_RST or not (data or syn):
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
        if flags & _TCP_RST:
            self._finish(conn.dirs[0])
            self._finish(conn.dirs[1])
        elif flags & _TCP_FIN:
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


# --- triage ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded message and where it travelled."""

    ts_ns: int
    proto: str  # "udp" or "tcp"
    src: str
    sport: int
    dst: str
    dport: int
    message: Message
    length: int  # message bytes (key to noise; without the TCP length prefix)
    listener: str | None  # "dst", "src" or None when neither port is a computed one
    week: int

    def to_json(self) -> dict[str, object]:
        msg = self.message
        listener = None
        if self.listener == "dst":
            listener = f"{self.dst}:{self.dport}"
        elif self.listener == "src":
            listener = f"{self.src}:{self.sport}"
        return {
            "type": "message",
            "time": iso_time(self.ts_ns),
            "src": f"{self.src}:{self.sport}",
            "dst": f"{self.dst}:{self.dport}",
            "proto": self.proto,
            "flags": f"0x{msg.flags:04x}",
            "kind": msg.kind,
            "listener": listener,
            "port_match": listener is not None,
            "week": self.week,
            "length": self.length,
            "noise": len(msg.noise),
            "data_bytes": len(msg.data) if msg.data is not None else None,
        }


def message_length(msg: Message) -> int:
    """Bytes of the encoded message (without a TCP length prefix)."""
    size = KEY_SIZE + 2 + CHECKSUM_SIZE + len(msg.noise)
    size += 6 if msg.peer_ip is not None else 0
    size += 4 if msg.unknown0 is not None else 0
    size += 4 if msg.unknown1 is not None else 0
    size += 3 + len(msg.data) if msg.data is not None else 0
    size += SYSINFO_SIZE if msg.sysinfo is not None else 0
    return size


def iso_time(ts_ns: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. 2026-11-26T12:00:00.000200Z."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return f"{_utc(seconds):%Y-%m-%dT%H:%M:%S}.{ns // 1000:06d}Z"
    except (OverflowError, OSError, ValueError):
        return f"{seconds}.{ns:09d}"


class _Hosts:
    """Per-host counts for the summary: distinct peers and packets/connections/messages."""

    __slots__ = ("peers", "udp", "tcp", "messages")

    def __init__(self) -> None:
        self.peers: set[bytes] = set()
        self.udp = 0
        self.tcp = 0
        self.messages = 0


class Triage:
    """Decode one capture: iterate run(path) for Records, then call summary()."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.stats: Counter[str] = Counter()
        self.messages: Counter[str] = Counter({key: 0 for key in EXPECT_KEYS})
        self.defrag = Defragmenter(self.limits, self.stats)
        self.tcp = TcpTracker(self.limits, self.stats)
        self.scanners: dict[bytes, _Hosts] = {}
        self.listeners: dict[bytes, _Hosts] = {}
        self.transfers: dict[tuple[str, bytes, bytes], list[int]] = {}
        self.pairs = 0
        self.file = ""

    def run(self, path: str | Path, progress: ProgressBar | None = None) -> Iterator[Record]:
        """Records of every decoded message, in capture order. CaptureError on a bad file."""
        self.file = str(path)
        try:
            with capture.Capture(path) as cap:
                for count, frame in enumerate(cap, 1):
                    records = self.frame(frame)
                    if records:
                        yield from records
                    if progress is not None and not count & 0x3FF:
                        progress.update(cap.position, cap.size)
        finally:
            if progress is not None:
                progress.close()

    # --- dissection ----------------------------------------------------------------------

    def frame(self, frame: capture.Frame) -> list[Record]:
        stats = self.stats
        stats["packets"] += 1
        layer = capture.network_layer(frame.linktype, frame.data)
        if layer is None:
            stats["unknown_link"] += 1
            return []
        ethertype, off = layer
        if ethertype == capture.ETHERTYPE_IPV6:
            stats["ipv6"] += 1
            return []
        if ethertype != capture.ETHERTYPE_IPV4:
            stats["non_ip"] += 1
            return []
        data = frame.data
        if len(data) < off + 20 or data[off] >> 4 != 4:
            stats["malformed"] += 1
            return []
        ihl = (data[off] & 0x0F) * 4
        total, ip_id, frag = struct.unpack_from("!HHH", data, off + 2)
        if ihl < 20 or total < ihl:
            stats["malformed"] += 1
            return []
        if len(data) < off + total:
            stats["snapped"] += 1  # cut by the capture's snapshot length
            return []
        stats["ipv4"] += 1
        proto = data[off + 9]
        src, dst = data[off + 12 : off + 16], data[off + 16 : off + 20]
        payload = data[off + ihl : off + total]
        if frag & 0x3FFF:  # more-fragments flag or a fragment offset
            whole = self.defrag.add(
                (src, dst, proto, ip_id),
                (frag & 0x1FFF) * 8,
                bool(frag & 0x2000),
                payload,
                frame.ts_ns,
            )
            if whole is None:
                return []
            payload = whole
        if proto == _PROTO_UDP:
            return self._udp(frame.ts_ns, src, dst, payload)
        if proto == _PROTO_TCP:
            return self._tcp(frame.ts_ns, src, dst, payload)
        return []

    def _udp(self, ts_ns: int, src: bytes, dst: bytes, segment: bytes) -> list[Record]:
        if len(segment) < 8:
            self.stats["malformed"] += 1
            return []
        sport, dport, length = struct.unpack_from("!HHH", segment)
        if length > len(segment) or 0 < length < 8:
            self.stats["malformed"] += 1
            return []
        payload = segment[8:length] if length else segment[8:]
        self.stats["udp_datagrams"] += 1
        if not message_verdict(payload, len(payload)):
            return []
        try:
            msg = decode(payload)
        except DecodeError:
            return []
        weeks = _weeks(ts_ns / 1e9)
        side = _listener_side(src, sport, dst, dport, weeks, _UDP_INDEX)
        if side == "dst":
            self._note(self.scanners, src, dst).udp += 1
        elif side == "src":
            self._note(self.listeners, src, dst).udp += 1
        return [self._record(ts_ns, "udp", src, sport, dst, dport, msg, len(payload), side, weeks)]

    def _tcp(self, ts_ns: int, src: bytes, dst: bytes, segment: bytes) -> list[Record]:
        if len(segment) < 20:
            self.stats["malformed"] += 1
            return []
        sport, dport, seq = struct.unpack_from("!HHI", segment)
        offset, flags = (segment[12] >> 4) * 4, segment[13]
        if offset < 20 or offset > len(segment):
            self.stats["malformed"] += 1
            return []
        self.stats["tcp_segments"] += 1
        conn, msgs = self.tcp.segment(src, sport, dst, dport, seq, flags, segment[offset:])
        if conn is None:
            return []
        weeks: tuple[int, ...] = ()
        if flags & _TCP_SYN:
            weeks = _weeks(ts_ns / 1e9)
            if not flags & _TCP_ACK:
                if not conn.scan_counted and _is_listener(dst, dport, weeks, _TCP_INDEX):
                    conn.scan_counted = True
                    self._note(self.scanners, src, dst).tcp += 1
            elif not conn.accept_counted and _is_listener(src, sport, weeks, _TCP_INDEX):
                conn.accept_counted = True
                self._note(self.listeners, src, dst).tcp += 1
        records = []
        for msg in msgs:
            weeks = weeks or _weeks(ts_ns / 1e9)
            side = _listener_side(src, sport, dst, dport, weeks, _TCP_INDEX)
            if side == "dst" and not conn.scan_counted:  # the SYN was not in the capture
                conn.scan_counted = True
                self._note(self.scanners, src, dst).tcp += 1
            elif side == "src" and not conn.accept_counted:
                conn.accept_counted = True
                self._note(self.listeners, src, dst).tcp += 1
            length = message_length(msg)
            records.append(
                self._record(ts_ns, "tcp", src, sport, dst, dport, msg, length, side, weeks)
            )
        return records

    # --- bookkeeping ---------------------------------------------------------------------

    def _record(
        self,
        ts_ns: int,
        proto: str,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        msg: Message,
        length: int,
        side: str | None,
        weeks: tuple[int, ...],
    ) -> Record:
        self.messages[f"{proto}_{msg.kind}"] += 1
        if side == "dst":
            self._entry(self.scanners, src).messages += 1
        elif side == "src":
            self._entry(self.listeners, src).messages += 1
        else:
            self.stats["port_mismatch"] += 1
        if msg.data is not None:
            totals = self.transfers.setdefault((proto, src, dst), [0, 0])
            totals[0] += 1
            totals[1] += len(msg.data)
        return Record(
            ts_ns,
            proto,
            socket.inet_ntoa(src),
            sport,
            socket.inet_ntoa(dst),
            dport,
            msg,
            length,
            side,
            weeks[0],
        )

    @staticmethod
    def _entry(table: dict[bytes, _Hosts], host: bytes) -> _Hosts:
        entry = table.get(host)
        if entry is None:
            entry = table[host] = _Hosts()
        return entry

    def _note(self, table: dict[bytes, _Hosts], host: bytes, peer: bytes) -> _Hosts:
        """host's entry, with peer added to its distinct peers (within max_summary_pairs)."""
        entry = self._entry(table, host)
        if peer not in entry.peers:
            if self.pairs < self.limits.max_summary_pairs:
                entry.peers.add(peer)
                self.pairs += 1
            else:
                self.stats["summary_capped"] += 1
        return entry

    def summary(self) -> dict[str, object]:
        """The closing JSON object: counts, per-host tables, TCP and fragment statistics."""
        s = self.stats

        def hosts(table: dict[bytes, _Hosts], peers: str) -> list[dict[str, object]]:
            rows = [
                {
                    "host": socket.inet_ntoa(ip),
                    peers: len(h.peers),
                    "udp": h.udp,
                    "tcp": h.tcp,
                    "messages": h.messages,
                }
                for ip, h in table.items()
            ]
            return sorted(rows, key=lambda r: (-int(r[peers]), -int(r["messages"]), r["host"]))

        transfers = [
            {
                "proto": proto,
                "src": socket.inet_ntoa(src),
                "dst": socket.inet_ntoa(dst),
                "messages": n,
                "bytes": size,
            }
            for (proto, src, dst), (n, size) in self.transfers.items()
        ]
        transfers.sort(key=lambda r: (-int(r["bytes"]), r["src"], r["dst"]))
        return {
            "type": "summary",
            "file": self.file,
            "packets": s["packets"],
            "messages": dict(self.messages),
            "port_mismatch": s["port_mismatch"],
            "skipped": {
                "ipv6": s["ipv6"],
                "non_ip": s["non_ip"],
                "unknown_link": s["unknown_link"],
                "malformed": s["malformed"],
                "snapped": s["snapped"],
            },
            "ip": {
                "ipv4": s["ipv4"],
                "fragments": s["fragments"],
                "reassembled": s["reassembled"],
                "fragments_dropped": s["fragments_dropped"],
            },
            "udp": {"datagrams": s["udp_datagrams"]},
            "tcp": {
                "segments": s["tcp_segments"],
                "retransmitted": s["retransmitted"],
                "out_of_order": s["out_of_order"],
                "gaps": s["gaps"],
                "evicted": s["evicted"],
                "peak_connections": self.tcp.peak_connections,
                "peak_buffered_bytes": self.tcp.peak_buffered,
            },
            "scanners": hosts(self.scanners, "destinations"),
            "listeners": hosts(self.listeners, "peers"),
            "transfers": transfers,
            "summary_capped": s["summary_capped"] > 0,
        }


# --- human output ----------------------------------------------------------------------------

RECORD_HEADER = (
    f"{'time (UTC)':<27}  {'proto':<5}  {'source':<21}  {'destination':<21}  "
    f"{'flags':<6}  {'kind':<7}  {'listener':<8}  noise"
)
_SHOWN = 50


def format_record(record: Record) -> str:
    row = record.to_json()
    listener = {"dst": "dst", "src": "src"}.get(record.listener or "", "no match")
    return (
        f"{row['time']:<27}  {record.proto:<5}  {row['src']:<21}  {row['dst']:<21}  "
        f"{row['flags']:<6}  {record.message.kind:<7}  {listener:<8}  {row['noise']}"
    )


def format_summary(summary: dict) -> str:
    m, skipped, tcp, ip = summary["messages"], summary["skipped"], summary["tcp"], summary["ip"]
    lines = [
        f"{summary['file']}: {summary['packets']} packets, "
        f"{sum(m.values())} Conficker P2P messages",
        f"  UDP: {m['udp_control']} control, {m['udp_data']} data; "
        f"TCP: {m['tcp_control']} control, {m['tcp_data']} data; "
        f"{summary['port_mismatch']} not on a computed listener port",
    ]
    if skipped["ipv6"]:
        lines.append(f"  skipped {skipped['ipv6']} IPv6 packets (Conficker P2P is IPv4 only)")
    other = {k: v for k, v in skipped.items() if k != "ipv6" and v}
    if other:
        lines.append(
            "  skipped " + ", ".join(f"{v} {k.replace('_', '-')}" for k, v in other.items())
        )
    if ip["fragments"]:
        lines.append(
            f"  IP fragments: {ip['fragments']}, datagrams reassembled: {ip['reassembled']}, "
            f"dropped: {ip['fragments_dropped']}"
        )
    if any(tcp[k] for k in ("retransmitted", "out_of_order", "gaps", "evicted")):
        lines.append(
            f"  TCP: {tcp['retransmitted']} retransmitted, {tcp['out_of_order']} out of order, "
            f"{tcp['gaps']} directions given up at a gap, {tcp['evicted']} connections evicted"
        )
    tables = (
        (
            "scanning sources (UDP messages or TCP connections to computed ports)",
            "scanners",
            "destinations",
        ),
        ("answering listeners (replied or accepted on their computed ports)", "listeners", "peers"),
    )
    for title, key, peers in tables:
        rows = summary[key]
        lines += ["", f"{title}: {len(rows)}"]
        if rows:
            lines.append(f"  {'host':<15}  {peers:>12}  {'udp':>8}  {'tcp':>8}  {'messages':>8}")
        for r in rows[:_SHOWN]:
            lines.append(
                f"  {r['host']:<15}  {r[peers]:>12}  {r['udp']:>8}  {r['tcp']:>8}  "
                f"{r['messages']:>8}"
            )
        if len(rows) > _SHOWN:
            lines.append(f"  ... {len(rows) - _SHOWN} more (see --json)")
    rows = summary["transfers"]
    lines += ["", f"data transfers: {len(rows)}"]
    if rows:
        lines.append(f"  {'proto':<5}  {'source':<15}  {'destination':<15}  {'messages':>8}  bytes")
    for r in rows[:_SHOWN]:
        lines.append(
            f"  {r['proto']:<5}  {r['src']:<15}  {r['dst']:<15}  {r['messages']:>8}  {r['bytes']}"
        )
    if len(rows) > _SHOWN:
        lines.append(f"  ... {len(rows) - _SHOWN} more (see --json)")
    return "\n".join(lines)


class ProgressBar:
    """A one-line progress bar (bytes read of the file size), redrawn at most 5 times a second.
    The caller decides whether the stream is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self.last = 0.0
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        share = done / total if total else 1.0
        filled = int(share * self.width)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%}  "
            f"{done / 1e6:.1f} / {total / 1e6:.1f} MB"
        )
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the bar (before other output on the same terminal); update() redraws it."""
        if self.drawn:
            self.stream.write("\r" + " " * (self.width + 40) + "\r")
            self.stream.flush()
            self.drawn = False

    close = clear
