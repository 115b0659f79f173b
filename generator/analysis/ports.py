"""`cfp2p ports`: a host's listener ports in an epoch week, with the dates and a note near a
rollover; and the listener tests triage runs on every message (is_listener, listener_side):
ports are computed for the packet time's epoch week and, within SLOP_SECONDS of a Monday
00:00 UTC rollover, for the neighbouring week too. ArgumentError names a malformed argument."""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import UTC, datetime
from functools import lru_cache

from ..codec import (
    EPOCH_OFFSET,
    WEEK_SECONDS,
    epoch_week,
    is_blacklisted,
    ports,
)

SLOP_SECONDS = 900  # accept the neighbouring week this close to a rollover (clock drift)
TCP_INDEX, UDP_INDEX = 0, 1  # index of pair A's port in ports(); pair B's is +2


class ArgumentError(ValueError):
    """A command-line argument is malformed: which argument and what was expected."""

    def __init__(self, argument: str, problem: str):
        self.argument, self.problem = argument, problem
        super().__init__(f"argument {argument}: {problem}")


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
    start, end = utc(week_start(week)), utc(week_start(week + 1) - 1)
    lines = [
        f"{table['ip']}  epoch week {week}: {start:%a %Y-%m-%d %H:%M} to {end:%a %Y-%m-%d %H:%M:%S}"
        " UTC",
        "",
        f"       pair A (fixed)   pair B (week {week})",
        f"TCP    {table['tcp'][0]:<14}   {table['tcp'][1]}",
        f"UDP    {table['udp'][0]:<14}   {table['udp'][1]}",
    ]
    for other in weeks_at(unix_seconds)[1:]:
        tcp_b, udp_b = ports(str(table["ip"]), other)[2:]
        lines.append(
            f"\nwithin {SLOP_SECONDS // 60} minutes of the week rollover: week {other}'s pair B is "
            f"TCP {tcp_b}, UDP {udp_b}"
        )
    return "\n".join(lines)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def weeks_at(unix_seconds: float) -> tuple[int, ...]:
    """The epoch week of unix_seconds, then the neighbouring one within SLOP_SECONDS of it."""
    week = epoch_week(unix_seconds)
    into = unix_seconds - week_start(week)
    if into <= SLOP_SECONDS:
        return week, week - 1
    if WEEK_SECONDS - into <= SLOP_SECONDS:
        return week, week + 1
    return (week,)


# --- listener ports --------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _host_ports(ip: bytes, week: int) -> tuple[int, int, int, int]:
    return ports(socket.inet_ntoa(ip), week)


def is_listener(ip: bytes, port: int, weeks: tuple[int, ...], index: int) -> bool:
    """True when port is one of ip's computed TCP (index 0) or UDP (index 1) ports."""
    if port < 2048 or is_blacklisted(port):  # never a listener port; skips the generator
        return False
    for week in weeks:
        computed = _host_ports(ip, week)
        if port == computed[index] or port == computed[index + 2]:
            return True
    return False


def listener_side(
    src: bytes, sport: int, dst: bytes, dport: int, weeks: tuple[int, ...], index: int
) -> str | None:
    if is_listener(dst, dport, weeks, index):
        return "dst"
    if is_listener(src, sport, weeks, index):
        return "src"
    return None
