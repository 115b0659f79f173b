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
ETH_P_ALL = 0x0003  # only an all-protocols packet socket sees the frames this host sends
ETH_P_IP = 0x0800
ETH_HEADER = 14
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sends


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


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _first_data_frame(cap: socket.socket, sport: int) -> bytes:
    """The first frame this host sent from TCP port sport with data, its TCP checksum
    completed (a veth leaves it to the offload that never happens on a copy)."""
    while True:
        frame, addr = cap.recvfrom(65535)
        ip = frame[ETH_HEADER:]
        if addr[1] != ETH_P_IP or addr[2] != PACKET_OUTGOING or len(ip) < 40 or ip[9] != 6:
            continue
        ihl, total = (ip[0] & 15) * 4, struct.unpack_from("!H", ip, 2)[0]
        tcp = bytearray(ip[ihl:total])
        if struct.unpack_from("!H", tcp)[0] != sport or len(tcp) <= (tcp[12] >> 4) * 4:
            continue
        tcp[16:18] = b"\0\0"
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
        tcp[16:18] = struct.pack("!H", _inet_checksum(pseudo + bytes(tcp)))
        return frame[:ETH_HEADER] + ip[:ihl] + bytes(tcp)


def send_tcp(flow: dict, dst: str, wait: float, iface: str) -> dict:
    """Connect, send each payload as its own segment, then wait until the peer has acked
    everything. Acked: half-close and wait for the peer to close too. Not acked within
    `wait`: the session is stalled; abort it with a RST. Either way, report the kernel's
    count of retransmitted segments.

    flow["resend"] > 0: that many exact copies of the first data segment (the frame as the
    kernel sent it: same seq, same bytes) follow it 50 ms apart, sent with a packet socket on
    `iface`, whatever the peer acked: retransmissions that do not depend on the kernel's
    timers. Reported as "resent"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(wait)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    resend = flow.get("resend", 0)
    cap = None
    if resend:
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        cap.bind((iface, ETH_P_ALL))
        cap.settimeout(wait)
    try:
        sock.bind((flow["src"], 0))
        sock.connect((dst, flow["dport"]))
        sport = sock.getsockname()[1]
        for payload in flow["payloads"]:
            sock.sendall(bytes.fromhex(payload))
            time.sleep(0.02)
        if cap is not None:
            frame = _first_data_frame(cap, sport)
            for _ in range(resend):
                time.sleep(0.05)
                cap.send(frame)
        deadline = time.monotonic() + wait
        while _unsent_or_unacked(sock) and time.monotonic() < deadline:
            time.sleep(0.01)
        retrans = _total_retrans(sock)
        if _unsent_or_unacked(sock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return {
                "sport": sport,
                "outcome": "stalled",
                "retransmissions": retrans,
                "resent": resend,
            }
        sock.shutdown(socket.SHUT_WR)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return {
            "sport": sport,
            "outcome": "delivered" if closed else "unclosed",
            "retransmissions": retrans,
            "resent": resend,
        }
    finally:
        sock.close()
        if cap is not None:
            cap.close()


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
            result = send_tcp(flow, plan["peer"], plan["tcp_wait"], plan.get("iface", "eth0"))
        _line(out, name=flow["name"], **result)


def main(argv: list[str]) -> None:
    mode, plan_path, out_path = argv
    with open(plan_path) as f:
        plan = json.load(f)
    with open(out_path, "w") as out:
        {"receive": receive, "send": send}[mode](plan, out)


if __name__ == "__main__":
    main(sys.argv[1:])
