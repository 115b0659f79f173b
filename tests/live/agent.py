"""Traffic agent for the inline test, run inside a network namespace (standard library only).

    agent.py receive PLAN OUT   listen on the plan's ports; write one JSON line to OUT per
                                datagram, TCP chunk and TCP end; print "ready" once bound
    agent.py send PLAN OUT      send the plan's flows in order; write one JSON line per flow

PLAN is the JSON file test_inline.py writes. Every wait is bounded: the receiver exits after
`lifetime` seconds (or on SIGTERM), the sender gives each TCP flow `tcp_wait` seconds."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import struct
import sys
import termios
import time
from fcntl import ioctl
from typing import IO, Any

TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans (u32) in struct tcp_info


def _line(out: IO[str], **record: Any) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def receive(plan: dict, out: IO[str]) -> None:
    sel = selectors.DefaultSelector()
    for port in plan["udp_ports"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((plan["address"], port))
        sel.register(s, selectors.EVENT_READ, ("udp", port))
    for port in plan["tcp_ports"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((plan["address"], port))
        s.listen(16)
        sel.register(s, selectors.EVENT_READ, ("listen", port))
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    deadline = time.monotonic() + plan["lifetime"]
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            role, port = key.data[0], key.data[1]
            if role == "udp":
                data, (src, sport) = sock.recvfrom(65535)
                _line(out, proto="udp", src=src, sport=sport, dport=port, data=data.hex())
            elif role == "listen":
                conn, (src, sport) = sock.accept()
                sel.register(conn, selectors.EVENT_READ, ("tcp", port, src, sport))
            else:
                src, sport = key.data[2], key.data[3]
                try:
                    data = sock.recv(65535)
                except ConnectionResetError:
                    data, end = b"", "reset"
                else:
                    end = "eof"
                if data:
                    _line(out, proto="tcp", src=src, sport=sport, dport=port, data=data.hex())
                else:
                    _line(out, proto="tcp", src=src, sport=sport, dport=port, end=end)
                    sel.unregister(sock)
                    sock.close()


def _unsent_or_unacked(sock: socket.socket) -> int:
    return struct.unpack("i", ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def _total_retrans(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, TCP_INFO_TOTAL_RETRANS)[0]


def send_tcp(flow: dict, dst: str, wait: float) -> dict:
    """Connect, send each payload as its own segment, then wait until the peer has acked
    everything. Acked: half-close and wait for the peer to close too. Not acked within
    `wait`: the session is stalled; abort it with a RST. Either way, report the kernel's
    count of retransmitted segments."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(wait)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((flow["src"], 0))
        sock.connect((dst, flow["dport"]))
        sport = sock.getsockname()[1]
        for payload in flow["payloads"]:
            sock.sendall(bytes.fromhex(payload))
            time.sleep(0.02)
        deadline = time.monotonic() + wait
        while _unsent_or_unacked(sock) and time.monotonic() < deadline:
            time.sleep(0.01)
        retrans = _total_retrans(sock)
        if _unsent_or_unacked(sock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return {"sport": sport, "outcome": "stalled", "retransmissions": retrans}
        sock.shutdown(socket.SHUT_WR)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return {
            "sport": sport,
            "outcome": "delivered" if closed else "unclosed",
            "retransmissions": retrans,
        }
    finally:
        sock.close()


def send(plan: dict, out: IO[str]) -> None:
    for flow in plan["flows"]:
        if flow["proto"] == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((flow["src"], 0))
                for payload in flow["payloads"]:
                    sock.sendto(bytes.fromhex(payload), (plan["peer"], flow["dport"]))
                    time.sleep(0.01)
                result = {"sport": sock.getsockname()[1], "outcome": "sent"}
        else:
            result = send_tcp(flow, plan["peer"], plan["tcp_wait"])
        _line(out, name=flow["name"], **result)


def main(argv: list[str]) -> None:
    mode, plan_path, out_path = argv
    with open(plan_path) as f:
        plan = json.load(f)
    with open(out_path, "w") as out:
        {"receive": receive, "send": send}[mode](plan, out)


if __name__ == "__main__":
    main(sys.argv[1:])
