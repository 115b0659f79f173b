"""The caps that keep triage's memory bounded on any capture (Limits), shared by the
defragmenter, the TCP tracker and the triage run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from .. import spec


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
