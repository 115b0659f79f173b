"""`cfp2p decode`: offline triage of a capture with the reference codec.

Triage reads a capture with capture.py, reassembles IPv4 fragments (defrag.py) and TCP streams
(tcp.py: per direction, in sequence order) and decodes every UDP payload and every
length-prefixed TCP message with generator.codec (message_verdict first, decode on True).
Memory stays bounded whatever the capture's size: the number of tracked TCP connections, the
bytes buffered per direction and in total, and the IP fragments held are all capped
(limits.py); past a cap the least recently used state is dropped. report.py formats what
this module finds; cli.py prints it.

A message's listener is the end whose port is one of its computed ports (PROTOCOL.md §1,
ports.py): the destination when the destination port matches, else the source (a reply
comes from the listener's port). Ports are computed for the packet time's epoch week and,
within 15 minutes of a Monday 00:00 UTC rollover, for the neighbouring week too.

The summary counts, per host, the attempts the scan signature counts: a scanning source sent
UDP datagrams holding a valid message to other hosts' computed UDP ports, or opened TCP
connections (SYN, once per connection, message or not) to their computed TCP ports; an
answering listener replied from its computed UDP port with a valid message, or accepted (SYN/ACK)
on its computed TCP port. It also lists, per host, the peers it announced (peer blocks) and the
distinct data blocks (by SHA-256) it sent or received: what the messages carried.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..codec import (
    DecodeError,
    Message,
    decode,
    encoded_length,
    message_verdict,
)
from . import capture
from .defrag import Defragmenter
from .limits import Limits
from .ports import TCP_INDEX, UDP_INDEX, is_listener, listener_side, utc, weeks_at
from .tcp import TCP_ACK, TCP_SYN, TcpTracker

EXPECT_KEYS = ("udp_control", "udp_data", "tcp_control", "tcp_data")
_PROTO_TCP, _PROTO_UDP = 6, 17


class Progress(Protocol):
    """What run() reports to while it reads (report.ProgressBar): bytes read of the size."""

    def update(self, done: int, total: int) -> None: ...

    def close(self) -> None: ...


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
    sha256: str | None = None  # of the deciphered data block, when there is one

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
            "peer": peer_text(msg),
            "data_flags": f"0x{msg.data_flags:02x}" if msg.data_flags is not None else None,
            "data_len": len(msg.data) if msg.data is not None else None,
            "sha256": self.sha256,
            "data_head": msg.data[:HEAD_BYTES].hex() if msg.data is not None else None,
        }


HEAD_BYTES = 16  # the data block's first bytes shown: enough to tell a PE header or a text


def peer_text(msg: Message) -> str | None:
    """The peer block as a.b.c.d:port (the alerts' cfp2p_peer), or None without one."""
    return None if msg.peer_ip is None else f"{msg.peer_ip}:{msg.peer_port}"


def iso_time(ts_ns: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. 2026-11-26T12:00:00.000200Z."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return f"{utc(seconds):%Y-%m-%dT%H:%M:%S}.{ns // 1000:06d}Z"
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


class _Carried:
    """Per-host evidence for the summary: peers announced, data blocks sent and received
    (sha256, length)."""

    __slots__ = ("announced", "sent", "received")

    def __init__(self) -> None:
        self.announced: set[str] = set()
        self.sent: set[tuple[str, int]] = set()
        self.received: set[tuple[str, int]] = set()


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
        self.carried: dict[bytes, _Carried] = {}
        self.pairs = 0
        self.file = ""

    def run(self, path: str | Path, progress: Progress | None = None) -> Iterator[Record]:
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
        weeks = weeks_at(ts_ns / 1e9)
        side = listener_side(src, sport, dst, dport, weeks, UDP_INDEX)
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
        if flags & TCP_SYN:
            weeks = weeks_at(ts_ns / 1e9)
            if not flags & TCP_ACK:
                if not conn.scan_counted and is_listener(dst, dport, weeks, TCP_INDEX):
                    conn.scan_counted = True
                    self._note(self.scanners, src, dst).tcp += 1
            elif not conn.accept_counted and is_listener(src, sport, weeks, TCP_INDEX):
                conn.accept_counted = True
                self._note(self.listeners, src, dst).tcp += 1
        records = []
        for msg in msgs:
            weeks = weeks or weeks_at(ts_ns / 1e9)
            side = listener_side(src, sport, dst, dport, weeks, TCP_INDEX)
            if side == "dst" and not conn.scan_counted:  # the SYN was not in the capture
                conn.scan_counted = True
                self._note(self.scanners, src, dst).tcp += 1
            elif side == "src" and not conn.accept_counted:
                conn.accept_counted = True
                self._note(self.listeners, src, dst).tcp += 1
            length = encoded_length(msg)
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
        sha256 = None
        if msg.peer_ip is not None:
            self._carry(src, "announced", f"{msg.peer_ip}:{msg.peer_port}")
        if msg.data is not None:
            totals = self.transfers.setdefault((proto, src, dst), [0, 0])
            totals[0] += 1
            totals[1] += len(msg.data)
            sha256 = hashlib.sha256(msg.data).hexdigest()
            self._carry(src, "sent", (sha256, len(msg.data)))
            self._carry(dst, "received", (sha256, len(msg.data)))
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
            sha256,
        )

    def _carry(self, host: bytes, what: str, item: object) -> None:
        """Add item to host's announced peers or blocks sent or received; items count against
        max_summary_pairs with the scanners' and listeners' peers."""
        entry = self.carried.get(host)
        if entry is not None and item in getattr(entry, what):
            return
        if self.pairs >= self.limits.max_summary_pairs:
            self.stats["summary_capped"] += 1
            return
        if entry is None:
            entry = self.carried[host] = _Carried()
        getattr(entry, what).add(item)
        self.pairs += 1

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

        def blocks(items: set[tuple[str, int]]) -> list[dict[str, object]]:
            return [{"sha256": sha, "length": n} for sha, n in sorted(items)]

        carried = [
            {
                "host": socket.inet_ntoa(ip),
                "announced": sorted(c.announced),
                "sent": blocks(c.sent),
                "received": blocks(c.received),
            }
            for ip, c in sorted(self.carried.items())
        ]
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
            "carried": carried,
            "summary_capped": s["summary_capped"] > 0,
        }
