"""IPv4 reassembly for triage: fragments keyed by (src, dst, protocol, id), held within
Limits (datagrams, bytes, time); past a cap the oldest datagram is dropped."""

from __future__ import annotations

from collections import Counter, OrderedDict

from .limits import Limits


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
