"""`cfp2p ports`: PROTOCOL.md §3 port vectors through the CLI, time parsing, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from generator import codec
from generator.cli import main

# PROTOCOL.md §3: address, UTC time, week, ports [tcpA, udpA, tcpB, udpB]
VECTORS = [
    ("192.0.2.1", "2026-11-26T12:00:00Z", 2968, (17075, 9674, 30249, 38636)),
    ("198.51.100.77", "2009-04-01T00:00:00Z", 2047, (13976, 59288, 18412, 56174)),
    ("203.0.113.200", "2026-11-29T23:59:59Z", 2968, (19190, 43880, 61023, 54685)),
    ("203.0.113.200", "2026-11-30T00:00:00Z", 2969, (19190, 43880, 41362, 43676)),
]
WEEK_2968 = VECTORS[2][3]  # 203.0.113.200 before the rollover of Monday 2026-11-30
WEEK_2969 = VECTORS[3][3]  # ... and after it


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["ports", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def ports_json(capsys: pytest.CaptureFixture[str], ip: str, at: str) -> dict:
    rc, out, err = run(capsys, ip, "--at", at, "--json")
    assert (rc, err) == (0, "")
    return json.loads(out)


@pytest.mark.parametrize(("ip", "at", "week", "expected"), VECTORS)
def test_vectors_json(
    capsys: pytest.CaptureFixture[str], ip: str, at: str, week: int, expected: tuple[int, ...]
) -> None:
    rc, out, err = run(capsys, ip, "--at", at, "--json")
    assert rc == 0 and err == ""
    tcp_a, udp_a, tcp_b, udp_b = expected
    # exactly this object, keys in this order, fixed pair's port first
    want = {"ip": ip, "week": week, "tcp": [tcp_a, tcp_b], "udp": [udp_a, udp_b]}
    assert out == json.dumps(want) + "\n"


@pytest.mark.parametrize(("ip", "at", "week", "expected"), VECTORS)
def test_vectors_human(
    capsys: pytest.CaptureFixture[str], ip: str, at: str, week: int, expected: tuple[int, ...]
) -> None:
    rc, out, err = run(capsys, ip, "--at", at)
    assert rc == 0 and err == ""
    assert ip in out and f"week {week}" in out
    tcp_row = next(line for line in out.splitlines() if line.startswith("TCP"))
    udp_row = next(line for line in out.splitlines() if line.startswith("UDP"))
    assert tcp_row.split()[1:] == [str(expected[0]), str(expected[2])]
    assert udp_row.split()[1:] == [str(expected[1]), str(expected[3])]


def test_human_shows_week_dates(capsys: pytest.CaptureFixture[str]) -> None:
    # 2026-11-26 is a Thursday; its week runs Monday 2026-11-23 to Sunday 2026-11-29
    _, out, _ = run(capsys, "192.0.2.1", "--at", "2026-11-26T12:00:00Z")
    assert "Mon 2026-11-23 00:00" in out and "Sun 2026-11-29 23:59:59" in out
    assert "rollover" not in out  # mid-week: no neighbouring week


def test_human_near_rollover_names_the_neighbouring_week(capsys: pytest.CaptureFixture[str]):
    _, out, _ = run(capsys, "203.0.113.200", "--at", "2026-11-30T00:10:00Z")
    assert "week 2969" in out
    assert f"week 2968's pair B is TCP {WEEK_2968[2]}, UDP {WEEK_2968[3]}" in out


# --- time notations --------------------------------------------------------------------------

THURSDAY_NOON = datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "at",
    [
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:00z",
        "2026-11-26 12:00:00Z",
        "2026-11-26T12:00Z",
        "20261126T120000Z",
        "2026-11-26T12:00:00+00:00",
        "2026-11-26T13:00:00+01:00",
        "2026-11-26T07:00:00-05:00",
        "2026-11-27T01:45:00+13:45",
        "2026-11-26T12:00:00.250Z",
        str(int(THURSDAY_NOON)),
        f"{THURSDAY_NOON:.0f}.75",
        f" {THURSDAY_NOON:.0f} ",
    ],
)
def test_same_instant_in_any_notation(capsys: pytest.CaptureFixture[str], at: str) -> None:
    got = ports_json(capsys, "192.0.2.1", at)
    assert got == {"ip": "192.0.2.1", "week": 2968, "tcp": [17075, 30249], "udp": [9674, 38636]}


@pytest.mark.parametrize(
    ("at", "week"),
    [
        ("2026-11-29T23:59:59Z", 2968),
        ("2026-11-30T00:00:00Z", 2969),
        ("2026-11-30T00:59:59+01:00", 2968),  # 23:59:59 UTC on Sunday
        ("2026-11-30T01:00:00+01:00", 2969),  # Monday 00:00 UTC
        ("2026-11-29T19:00:00-05:00", 2969),  # Monday 00:00 UTC, still Sunday locally
        ("2026-11-29T23:30:00-00:30", 2969),
        (str(int(datetime(2026, 11, 30, tzinfo=UTC).timestamp()) - 1), 2968),
        (str(int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())), 2969),
    ],
)
def test_week_rollover_boundaries(capsys: pytest.CaptureFixture[str], at: str, week: int) -> None:
    got = ports_json(capsys, "203.0.113.200", at)
    expected = WEEK_2968 if week == 2968 else WEEK_2969
    assert got["week"] == week
    assert got["tcp"] == [expected[0], expected[2]]
    assert got["udp"] == [expected[1], expected[3]]
    assert got["tcp"][0] == 19190 and got["udp"][0] == 43880  # pair A never changes


def test_default_time_is_now(capsys: pytest.CaptureFixture[str]) -> None:
    before = codec.epoch_week(time.time())
    rc, out, _ = run(capsys, "192.0.2.1", "--json")
    after = codec.epoch_week(time.time())
    got = json.loads(out)
    assert rc == 0 and got["week"] in (before, after)
    assert got["tcp"][1] == codec.ports("192.0.2.1", got["week"])[2]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", ["300.1.1.1", "192.0.2", "192.0.2.1.5", "::1", "2001:db8::1", "x"])
def test_bad_ip(capsys: pytest.CaptureFixture[str], ip: str) -> None:
    rc, out, err = run(capsys, ip, "--at", "2026-11-26T12:00:00Z", "--json")
    assert rc == 2 and out == ""
    assert "argument IP" in err and repr(ip) in err and "IPv4" in err


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2026-11-26T12:00:00", "no time zone"),
        ("2026-11-26 12:00", "no time zone"),
        ("2026-11-26", "no time zone"),
        ("yesterday", "ISO 8601"),
        ("2026-13-01T00:00:00Z", "ISO 8601"),
        ("12:00Z", "ISO 8601"),
        ("", "ISO 8601"),
        ("1e9", "ISO 8601"),
        ("99999999999999", "outside"),
    ],
)
def test_bad_time(capsys: pytest.CaptureFixture[str], at: str, reason: str) -> None:
    rc, out, err = run(capsys, "192.0.2.1", "--at", at, "--json")
    assert rc == 2 and out == ""
    assert err.startswith("cfp2p: error: argument --at:") and repr(at) in err and reason in err


def test_exit_status_of_the_command() -> None:
    """The installed entry point exits 2 with the message on stderr and nothing on stdout."""
    code = "import sys; from generator.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "ports", "192.0.2.1", "--at", "2026-11-26T12:00:00"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--at" in proc.stderr and "time zone" in proc.stderr
