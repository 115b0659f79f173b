"""Human output of `cfp2p decode`: the record lines, the closing summary, and the progress
bar (tqdm) drawn on a terminal while a capture is read."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from .triage import Record

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
    rows = summary["carried"]
    lines += ["", f"peers announced and data blocks (SHA-256) per host: {len(rows)}"]
    for r in rows[:_SHOWN]:
        lines.append(f"  {r['host']}")
        if r["announced"]:
            shown = ", ".join(r["announced"][:_SHOWN])
            more = len(r["announced"]) - _SHOWN
            lines.append(f"    announced  {shown}" + (f" ... {more} more" if more > 0 else ""))
        for what in ("sent", "received"):
            for b in r[what][:_SHOWN]:
                lines.append(f"    {what:<9}  {b['sha256']}  {b['length']} bytes")
            if len(r[what]) > _SHOWN:
                lines.append(f"    ... {len(r[what]) - _SHOWN} more blocks {what} (see --json)")
    if len(rows) > _SHOWN:
        lines.append(f"  ... {len(rows) - _SHOWN} more (see --json)")
    return "\n".join(lines)


class ProgressBar:
    """Bytes read of the capture's size, drawn by tqdm on `stream` (the caller decides
    whether it is a terminal) at most 5 times a second. clear() erases it before other
    output on the same terminal; the next update() draws it again."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=total,
                initial=done,
                file=self.stream,
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                mininterval=0.2,
                leave=False,
                dynamic_ncols=True,
            )
            return
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def clear(self) -> None:
        if self.bar is not None:
            self.bar.clear()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
