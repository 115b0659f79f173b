"""The Snort 3 option outside Snort, under LuaJIT with a stand-in for get_buffer(): the
buffer points at a packet's payload inside a copy of the whole frame, as in Snort, and
the option must find the headers in front of it (IPv4 with and without options, IPv6,
TCP options), follow TCP by sequence number, and decode nothing whose headers do not
check out, without an error whatever lies in front of the payload."""

from __future__ import annotations

import random
import struct

import lupa.luajit21
import pytest
from stand_in import tcp_frame

from generator import codec as P
from generator import spec
from generator.targets import snort3

SPEC = spec.load()
FILES = snort3.render_snort3(SPEC, SPEC.defaults)
SCRIPT = FILES[f"snort3/{SPEC.snort3.lua_script}"]
KIND_SCRIPT = FILES[f"snort3/{SPEC.snort3.kind_script}"]
CONTROL = bytes.fromhex("78563412f0debc9af044c4310414")  # PROTOCOL.md's probe vector
DATA = bytes.fromhex(
    "efbeadde0403020197f89f800001409d051f4068656c6d6b30236f6e6669626e71227374ff12aebaebafbe"
)
LISTENER, CLIENT = 38636, 50000

# snort_plugin's bindings, with get_buffer() served from a buffer the test fills: the frame
# is copied behind `pad` bytes of filler, so reads in front of the headers stay in it.
_STAND_IN = """
local real = require("ffi")
real.cdef[[ struct SnortBuffer { const char* type; const uint8_t* data; unsigned len; }; ]]
local buf = real.new("struct SnortBuffer")
local mem
ffi = setmetatable({ C = { get_buffer = function() return buf end } }, { __index = real })
package.preload["snort_plugin"] = function() return true end
function feed(frame, at, len, pad, filler)
  mem = real.new("uint8_t[?]", pad + #frame)
  real.fill(mem, pad, filler)
  real.copy(mem + pad, frame, #frame)
  buf.data, buf.len = mem + pad + at, len
  return eval()
end
"""


class Option:
    """One Lua state of the option, as the rules of one kind would have it."""

    def __init__(self, kind: str, script: str = SCRIPT):
        self.lua = lupa.luajit21.LuaRuntime(unpack_returned_tuples=True)
        self.lua.execute(_STAND_IN)
        self.lua.globals().args = self.lua.table_from({"kind": kind})
        self.lua.execute(script)
        assert self.lua.globals().init() is True
        self._feed = self.lua.globals().feed

    def packet(self, frame: bytes, payload_at: int, pad: int = 128, filler: int = 0) -> bool:
        return bool(self._feed(frame, payload_at, len(frame) - payload_at, pad, filler))


def ipv4(proto: int, l4: bytes, src=(192, 0, 2, 1), dst=(192, 0, 2, 2), options=b"") -> bytes:
    ihl = 5 + len(options) // 4
    head = struct.pack(
        ">BBHHHBBH4s4s",
        0x40 + ihl,
        0,
        ihl * 4 + len(l4),
        0,
        0,
        64,
        proto,
        0,
        bytes(src),
        bytes(dst),
    )
    return head + options + l4


def ipv6(proto: int, l4: bytes, src: bytes = bytes(15) + b"\x01") -> bytes:
    dst = bytes(15) + b"\x02"
    return struct.pack(">IHBB", 6 << 28, len(l4), proto, 64) + src + dst + l4


def udp(payload: bytes, sp=CLIENT, dp=LISTENER) -> bytes:
    return struct.pack(">HHHH", sp, dp, 8 + len(payload), 0) + payload


def tcp(payload: bytes, seq: int, sp=CLIENT, dp=LISTENER, flags=0x18, options=b"") -> bytes:
    off = 5 + len(options) // 4
    return (
        struct.pack(">HHIIBBHHH", sp, dp, seq, 0, off << 4, flags, 65535, 0, 0) + options + payload
    )


ETH = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"


@pytest.mark.parametrize(
    "frame",
    [
        ETH + ipv4(17, udp(CONTROL)),
        ETH + ipv4(17, udp(CONTROL), options=b"\x01" * 8),  # IPv4 options: ihl 7
        b"\x02" * 12 + b"\x86\xdd" + ipv6(17, udp(CONTROL)),
        ipv4(17, udp(CONTROL)),  # raw IP: nothing of the frame in front of the header
    ],
    ids=["ipv4", "ipv4-options", "ipv6", "raw-ip"],
)
def test_udp_message_found_behind_its_headers(frame):
    at = len(frame) - len(CONTROL)
    assert Option("control").packet(frame, at)
    assert Option("any").packet(frame, at)
    assert not Option("data").packet(frame, at)


def test_data_kind_and_blacklisted_listener():
    """The rules' headers hand the option only packets on the listener's side of an allowed
    port (Snort's flow direction, which the option cannot see): it takes the side its
    mode names, or the other where that one's port is blacklisted, and decodes nothing
    whose ports are both blacklisted."""
    frame = ETH + ipv4(17, udp(DATA))
    assert Option("data").packet(frame, len(frame) - len(DATA))
    assert not Option("control").packet(frame, len(frame) - len(DATA))
    assert P.is_blacklisted(80) and P.is_blacklisted(1000)
    both = ETH + ipv4(17, udp(CONTROL, sp=1000, dp=80))
    assert not Option("control").packet(both, len(both) - len(CONTROL))
    # handed over only as a reply from a listener on CLIENT's port
    to_80 = ETH + ipv4(17, udp(CONTROL, dp=80))
    assert Option("control").packet(to_80, len(to_80) - len(CONTROL))


def test_headers_that_do_not_check_out_are_not_decoded():
    frame = ETH + ipv4(17, udp(CONTROL))
    at = len(frame) - len(CONTROL)
    bad_length = bytearray(frame)
    bad_length[14 + 2 : 14 + 4] = struct.pack(">H", 20 + 8 + len(CONTROL) + 1)  # IP length
    assert not Option("control").packet(bytes(bad_length), at)
    bad_proto = bytearray(frame)
    bad_proto[14 + 9] = 6  # says TCP, is UDP
    assert not Option("control").packet(bytes(bad_proto), at)
    # the payload alone, with filler in front: no headers at all
    assert not Option("control").packet(CONTROL, 0, filler=0x45)


def test_tcp_by_sequence_number_with_options_and_handshake():
    """A message split in two segments, the second arriving first; TCP timestamps (a
    32-byte header); the SYN starts the direction, so its first bytes are not lost."""
    msg = P.encode_tcp(P.decode(CONTROL))
    isn = 0xFFFFFFF0  # the sequence numbers wrap inside the message
    ts = b"\x01\x01\x08\x0a" + bytes(8)
    opt = Option("control")
    syn = ETH + ipv4(6, tcp(b"", isn, flags=0x02, options=ts))
    assert not opt.packet(syn, len(syn))
    first, second = msg[:7], msg[7:]
    late = ETH + ipv4(6, tcp(second, (isn + 1 + len(first)) % 2**32, options=ts))
    early = ETH + ipv4(6, tcp(first, isn + 1, options=ts))
    assert not opt.packet(late, len(late) - len(second))  # held ahead of the gap
    assert opt.packet(early, len(early) - len(first))  # fills it: the message is whole
    # a retransmission of it is not a second message
    assert not opt.packet(late, len(late) - len(second))


def test_flows_are_kept_apart():
    msg = P.encode_tcp(P.decode(CONTROL))
    opt = Option("control")
    a1 = tcp_frame(msg[:5], 1000, sp=50001)
    b1 = tcp_frame(msg[:9], 5000, sp=50002)
    a2 = tcp_frame(msg[5:], 1005, sp=50001)
    b2 = tcp_frame(msg[9:], 5009, sp=50002)
    assert not opt.packet(a1, len(a1) - 5)
    assert not opt.packet(b1, len(b1) - 9)
    assert opt.packet(a2, len(a2) - len(msg) + 5)
    assert opt.packet(b2, len(b2) - len(msg) + 9)


def test_ipv6_flows_are_told_apart_by_their_whole_addresses():
    msg = P.encode_tcp(P.decode(CONTROL))
    opt = Option("control")
    frames = {}
    for host in (1, 3):
        src = bytes(15) + bytes([host])
        for part, seq in ((msg[:6], 100), (msg[6:], 106)):
            frames.setdefault(host, []).append(
                ETH[:12] + b"\x86\xdd" + ipv6(6, tcp(part, seq), src)
            )
    assert not opt.packet(frames[1][0], len(frames[1][0]) - 6)
    assert not opt.packet(frames[3][0], len(frames[3][0]) - 6)
    for host in (1, 3):
        assert opt.packet(frames[host][1], len(frames[host][1]) - len(msg) + 6)


def test_a_reply_is_judged_on_the_listener_port():
    """Both directions are one flow: a reply from the listener to a client on a port the
    blacklist rules out is still decoded (the listener is its source), as on Suricata,
    whether or not the option saw the question first (Snort's direction, in the rules,
    decides which side is the listener's)."""
    opt = Option("control")
    ask = ETH + ipv4(17, udp(CONTROL, sp=1000, dp=LISTENER))
    reply = ETH + ipv4(
        17, udp(CONTROL, sp=LISTENER, dp=1000), src=(192, 0, 2, 2), dst=(192, 0, 2, 1)
    )
    assert P.is_blacklisted(1000)
    assert opt.packet(ask, len(ask) - len(CONTROL))
    assert opt.packet(reply, len(reply) - len(CONTROL))
    assert Option("control").packet(reply, len(reply) - len(CONTROL))


def test_counts_are_the_packets_and_a_flow_without_messages_is_left_alone():
    """A valid message matches its packet only; a flow whose first two datagrams were not
    messages is skipped from then on, in both directions, and other flows are not."""
    opt = Option("any")
    noise = CONTROL[:-1] + bytes([CONTROL[-1] ^ 1])  # the checksum no longer holds
    first = ETH + ipv4(17, udp(CONTROL))
    at = len(first) - len(CONTROL)
    assert opt.packet(first, at)
    assert not opt.packet(ETH + ipv4(17, udp(noise)), at)
    assert opt.packet(first, at), "a flow that carried a message is never skipped"
    other = (192, 0, 2, 7)
    bad = ETH + ipv4(17, udp(noise), src=other)
    assert not opt.packet(bad, at) and not opt.packet(bad, at)
    assert not opt.packet(ETH + ipv4(17, udp(CONTROL), src=other), at), "skipped"
    back = ETH + ipv4(17, udp(CONTROL, sp=LISTENER, dp=CLIENT), src=(192, 0, 2, 2), dst=other)
    assert not opt.packet(back, at), "the reply direction too"
    assert opt.packet(ETH + ipv4(17, udp(CONTROL), src=(192, 0, 2, 8)), at)


def test_random_bytes_in_front_of_any_payload_never_error():
    rng = random.Random(14)
    opt = Option("any")
    for _ in range(2000):
        frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 120)))
        at = rng.randint(0, len(frame))
        opt.packet(frame, at, pad=128, filler=rng.getrandbits(8))


def test_kind_option_reads_the_flags():
    """After the decoder matched a datagram, the kind option tells control from data."""
    for payload, kind in ((CONTROL, "control"), (DATA, "data")):
        frame = ETH + ipv4(17, udp(payload))
        at = len(frame) - len(payload)
        other = "data" if kind == "control" else "control"
        assert Option(kind, KIND_SCRIPT).packet(frame, at)
        assert not Option(other, KIND_SCRIPT).packet(frame, at)
    assert not Option("control", KIND_SCRIPT).packet(CONTROL[:9], 0)  # no room for flags
    with pytest.raises(lupa.luajit21.LuaError, match="expected kind='control' or 'data'"):
        Option("any", KIND_SCRIPT)
