"""Streaming reader for capture files: classic pcap and pcapng, then the link layer.

`read(path)` yields one `Frame` per captured packet with constant memory: one record is in
memory at a time. It reads

- pcap: both byte orders, microsecond (0xA1B2C3D4) and nanosecond (0xA1B23C4D) timestamps;
- pcapng: sections in either byte order (SHB), interfaces with their own link type, timestamp
  resolution and offset (IDB options if_tsresol, if_tsoffset), enhanced, simple and obsolete
  packet blocks (EPB, SPB, PB); other blocks are skipped.

`network_layer(frame)` strips the link layer (Ethernet with 802.1Q/802.1ad tags, raw IP,
IPv4/IPv6 link types, Linux cooked SLL and SLL2, BSD loopback) and gives the ethertype and the
offset of the network header.

A file that is not a capture, or a truncated or corrupt one, raises CaptureError naming the
file, the byte offset and what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12  # DLT_RAW on most BSDs
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

# A record claiming more captured bytes than this (and more than the file's snaplen) is corrupt;
# 262144 is libpcap's and Wireshark's largest standard snapshot length.
MAX_RECORD = 262144

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BYTE_ORDER = 0x1A2B3C4D
_BLOCK_IDB, _BLOCK_PB, _BLOCK_SPB, _BLOCK_EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14
_MAX_BLOCK = 64 * 1024 * 1024


class CaptureError(ValueError):
    """The file cannot be read as a capture: which file, where, and what is wrong."""

    def __init__(self, path: str | Path, problem: str, offset: int | None = None):
        self.path, self.problem, self.offset = str(path), problem, offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {problem}")


class Frame(NamedTuple):
    """One captured packet: time in integer nanoseconds since the epoch (UTC), link type,
    the captured bytes."""

    ts_ns: int
    linktype: int
    data: bytes


class Capture:
    """An open capture file; iterate it for Frames. `size` and `position` (bytes consumed so
    far) drive a progress bar."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "rb", buffering=1 << 20)  # noqa: SIM115
            self.size = self.path.stat().st_size
        except OSError as err:
            raise CaptureError(path, err.strerror or str(err)) from None
        self.position = 0
        magic = self._file.read(4)
        self._file.seek(0)
        if magic in _PCAP_MAGIC:
            self.format = "pcap"
        elif len(magic) == 4 and struct.unpack("<I", magic)[0] == _PCAPNG_SHB:
            self.format = "pcapng"
        else:
            self.close()
            if magic[:2] == b"\x1f\x8b":
                raise CaptureError(path, "gzip-compressed file: decompress it first", 0)
            raise CaptureError(
                path, f"not a pcap or pcapng capture (magic 0x{magic.hex() or 'empty'})", 0
            )

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[Frame]:
        return self._pcap() if self.format == "pcap" else self._pcapng()

    def _read(self, n: int, what: str, start: int) -> bytes:
        """Exactly n bytes, or CaptureError naming what (beginning at offset start) was cut
        short."""
        data = self._file.read(n)
        if len(data) != n:
            raise CaptureError(self.path, f"truncated {what}: the file ends inside it", start)
        self.position += n
        return data

    # --- classic pcap ------------------------------------------------------------------------

    def _pcap(self) -> Iterator[Frame]:
        header = self._read(24, "pcap file header", 0)
        order, ts_scale = _PCAP_MAGIC[header[:4]]
        major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(
            order + "HHiIII", header[4:]
        )
        if major != 2:
            raise CaptureError(self.path, f"unsupported pcap version {major}", 4)
        linktype &= 0xFFFF  # the upper bits hold FCS information
        limit = max(MAX_RECORD, snaplen)
        record = struct.Struct(order + "IIII")
        read = self._file.read
        while True:
            start = self.position
            head = read(16)
            if not head:
                return
            if len(head) != 16:
                raise CaptureError(
                    self.path, f"truncated record header: {len(head)} of 16 bytes", start
                )
            sec, frac, caplen, _origlen = record.unpack(head)
            if caplen > limit:
                raise CaptureError(
                    self.path,
                    f"corrupt record header: captured length {caplen} exceeds "
                    f"the snapshot length {snaplen}",
                    start,
                )
            data = read(caplen)
            if len(data) != caplen:
                raise CaptureError(
                    self.path,
                    f"truncated packet record: {len(data)} of {caplen} captured bytes "
                    "before the end of the file",
                    start,
                )
            self.position += 16 + caplen
            yield Frame(sec * 1_000_000_000 + frac * ts_scale, linktype, data)

    # --- pcapng ------------------------------------------------------------------------------

    def _pcapng(self) -> Iterator[Frame]:
        order = "<"
        interfaces: list[tuple[int, int, int, int]] = []  # linktype, snaplen, units/s, offset
        last_ts = 0
        while True:
            start = self.position
            head = self._file.read(8)
            if not head:
                return
            if len(head) != 8:
                raise CaptureError(
                    self.path, f"truncated block header: {len(head)} of 8 bytes", start
                )
            self.position += 8
            (block_type,) = struct.unpack(order + "I", head[:4])
            if block_type == _PCAPNG_SHB:
                magic = self._read(4, "section header block", start)
                if magic == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif magic == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    raise CaptureError(
                        self.path, f"bad section byte-order magic 0x{magic.hex()}", start + 8
                    )
                interfaces = []
                (total,) = struct.unpack(order + "I", head[4:])
                self._check_block_length(total, start, minimum=28)
                body = magic + self._read(total - 16, "section header block", start)
            else:
                (total,) = struct.unpack(order + "I", head[4:])
                self._check_block_length(total, start)
                body = self._read(total - 12, f"block of type 0x{block_type:x}", start)
            (trailer,) = struct.unpack(
                order + "I", self._read(4, f"block of type 0x{block_type:x}", start)
            )
            if trailer != total:
                raise CaptureError(
                    self.path,
                    f"corrupt block: trailing length {trailer} != leading length {total}",
                    start,
                )
            if block_type == _BLOCK_IDB:
                interfaces.append(self._interface(body, order, start))
            elif block_type in (_BLOCK_EPB, _BLOCK_PB):
                if len(body) < 20:
                    raise CaptureError(self.path, "corrupt packet block: too short", start)
                if block_type == _BLOCK_EPB:
                    iface, ts_hi, ts_lo, caplen = struct.unpack_from(order + "IIII", body)
                else:
                    iface, _drops, ts_hi, ts_lo, caplen = struct.unpack_from(order + "HHIII", body)
                if caplen > len(body) - 20:
                    raise CaptureError(
                        self.path, f"corrupt packet block: captured length {caplen}", start
                    )
                if iface >= len(interfaces):
                    raise CaptureError(
                        self.path, f"packet block names undeclared interface {iface}", start
                    )
                linktype, _snaplen, units, offset_s = interfaces[iface]
                ticks = (ts_hi << 32) | ts_lo
                last_ts = ticks * 1_000_000_000 // units + offset_s * 1_000_000_000
                yield Frame(last_ts, linktype, body[20 : 20 + caplen])
            elif block_type == _BLOCK_SPB:
                if not interfaces:
                    raise CaptureError(self.path, "simple packet block before any interface", start)
                if len(body) < 4:
                    raise CaptureError(self.path, "corrupt simple packet block", start)
                linktype, snaplen, _units, _offset = interfaces[0]
                (origlen,) = struct.unpack_from(order + "I", body)
                caplen = min(origlen, len(body) - 4, snaplen or origlen)
                # A simple packet block has no timestamp: keep the previous packet's time.
                yield Frame(last_ts, linktype, body[4 : 4 + caplen])

    def _check_block_length(self, total: int, start: int, minimum: int = 12) -> None:
        if total < minimum or total % 4 or total > _MAX_BLOCK:
            raise CaptureError(self.path, f"corrupt block: total length {total}", start)

    def _interface(self, body: bytes, order: str, start: int) -> tuple[int, int, int, int]:
        if len(body) < 8:
            raise CaptureError(self.path, "corrupt interface description block", start)
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
        units, offset_s = 1_000_000, 0
        pos = 8
        while pos + 4 <= len(body):
            code, length = struct.unpack_from(order + "HH", body, pos)
            value = body[pos + 4 : pos + 4 + length]
            if code == 0:
                break
            if code == _OPT_TSRESOL and length >= 1:
                exp = value[0]
                units = 2 ** (exp & 0x7F) if exp & 0x80 else 10**exp
            elif code == _OPT_TSOFFSET and length >= 8:
                (offset_s,) = struct.unpack(order + "q", value[:8])
            pos += 4 + (length + 3) // 4 * 4
        return linktype, snaplen, units, offset_s


def read(path: str | Path) -> Iterator[Frame]:
    """Every frame of the capture at path (pcap or pcapng), streamed."""
    with Capture(path) as cap:
        yield from cap


def network_layer(linktype: int, data: bytes) -> tuple[int, int] | None:
    """(ethertype, offset of the network header) or None for a link type this reader does not
    know or a frame too short for its link header. Raw-IP link types report the ethertype from
    the IP version nibble."""
    if linktype == LINKTYPE_ETHERNET:
        off = 12
        while len(data) >= off + 2:
            ethertype = (data[off] << 8) | data[off + 1]
            if ethertype in (0x8100, 0x88A8, 0x9100):  # VLAN tags
                off += 4
                continue
            return ethertype, off + 2
        return None
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_OPENBSD, LINKTYPE_IPV4):
        return _by_version(data, 0)
    if linktype == LINKTYPE_IPV6:
        return ETHERTYPE_IPV6, 0
    if linktype == LINKTYPE_LINUX_SLL:
        return ((data[14] << 8) | data[15], 16) if len(data) >= 16 else None
    if linktype == LINKTYPE_LINUX_SLL2:
        return ((data[0] << 8) | data[1], 20) if len(data) >= 20 else None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        # a 4-byte address family in the capturing host's byte order (LOOP: network order)
        return _by_version(data, 4) if len(data) >= 4 else None
    return None


def _by_version(data: bytes, off: int) -> tuple[int, int] | None:
    if len(data) <= off:
        return None
    version = data[off] >> 4
    if version == 4:
        return ETHERTYPE_IPV4, off
    if version == 6:
        return ETHERTYPE_IPV6, off
    return 0, off
