"""Deterministic counts outside Suricata: Lua VM instructions and bytes deciphered per
decoder invocation (the worst case of one call over adversarial inputs: bench/worstcase.py).

The pack's script(s) run under lupa in tests/lua/stand_in.py's Decoder (one Lua state per
decoder rule, as Suricata gives each rule its own): LuaJIT with the JIT off for Suricata 7
(the interpreter executes every bytecode, so the count is of bytecodes), Lua 5.4 for
Suricata 8. A count hook (debug.sethook, "", N) adds N to a counter every N VM
instructions; the counter carries over between calls, so totals are exact to N. The hook
is set in bench code on the Decoder's own runtime; stand_in.py is not changed.

Candidates are the packets of an input that a decoder rule selects (bench.rulemodel: role,
listener port, flow direction, flags), in file order; flowint tests a rule makes before its
script (e.g. `flowint:cfp2p_skip,notset`) are applied to the flowints the stand-in keeps,
shared by all rules of an engine as Suricata's are per flow. Every call gets the raw
frame as read from the pcap (frame=).

Bytes deciphered are derived with the Python codec (generator/codec.py), not read from
the script: for each message frame a call works on (a UDP payload; the frames of a TCP
direction, cut by their u16 length prefix), the bytes from the flags up to the end of the
checksum, or up to where the layout (flags, data length) shows the frame cannot hold a
message. Noise after the checksum is not deciphered. A TCP direction stops at its first
frame that is not a message (the script then marks the flow to be skipped).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import inputs
from bench.rulemodel import Selector
from generator import codec as protocol

ROOT = inputs.ROOT
sys.path.insert(0, str(ROOT / "tests" / "lua"))
from stand_in import ENGINES as LUA_RUNTIMES  # noqa: E402
from stand_in import Decoder  # noqa: E402

HOOK = """
local counter, every = ...
debug.sethook(function() counter.n = counter.n + every end, "", every)
"""


def runtime_for(major: int) -> str:
    """stand_in's engine name for a Suricata major version."""
    return "luajit" if major < 8 else "lua54"


CALIBRATE = "local x = 0 for i = 1, 100000 do x = x + i end return x"
_factors: dict[tuple[str, int], float] = {}


def _hooked(lua, every: int):  # noqa: ANN001, ANN202 - a lupa runtime, its counter table
    if lua.eval("jit ~= nil"):
        lua.execute("jit.off(); jit.flush()")
    counter = lua.table_from({"n": 0})
    lua.execute(HOOK, counter, every)
    return counter


def factor(runtime: str, every: int) -> float:
    """Real instructions per counted one. Lua 5.4 also counts the hook function's own
    instructions towards the next period (about 5 per firing: 5% at a hook every 100);
    LuaJIT does not. Measured on a loop against a hook every instruction, which is exact."""
    key = (runtime, every)
    if key not in _factors:
        counts = []
        for n in (1, every):
            lua = LUA_RUNTIMES[runtime].LuaRuntime()
            counter = _hooked(lua, n)
            lua.execute(CALIBRATE)
            counts.append(counter.n)
        _factors[key] = counts[0] / counts[1]
    return _factors[key]


class Counted:
    """A Decoder whose Lua state counts its VM instructions: a hook every `every`
    instructions (1: exact per call; more: faster, per-call counts to `every`, totals
    corrected by `factor`)."""

    def __init__(self, script: str, runtime: str, sid: int, every: int = 1) -> None:
        self.decoder = Decoder(script, runtime, sid)
        self.factor = factor(runtime, every) if every > 1 else 1.0
        self.counter = _hooked(self.decoder.lua, every)

    @property
    def count(self) -> int:
        return round(self.counter.n * self.factor)

    def call(self, **kw: object) -> int:
        """One match(); the instructions it took (to the hook's granularity)."""
        before = self.counter.n
        self.decoder.match(**kw)  # type: ignore[arg-type]
        return round((self.counter.n - before) * self.factor)


# --- packets ------------------------------------------------------------------------------


@dataclass
class Pkt:
    frame: bytes
    payload: bytes
    sec: int
    sip: str
    dip: str
    sp: int
    dp: int
    tcp: bool
    flow_id: int
    c2s: bool
    role: str | None
    server_port: int


def packets(path: Path) -> Iterator[Pkt]:
    """The IPv4 UDP and TCP packets of a pcap written by bench.inputs, with their flow (the
    first packet's sender is the client) and their role as bench.inputs counts it."""
    flows: dict[tuple, tuple[int, tuple]] = {}
    for ts, frame in inputs.iter_records(path):
        if frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 15) * 4
        proto = frame[23]
        if proto not in (6, 17):
            continue
        ip_end = 14 + struct.unpack_from("!H", frame, 16)[0]
        src, dst = frame[26:30], frame[30:34]
        l4 = 14 + ihl
        sp, dp = struct.unpack_from("!HH", frame, l4)
        if proto == 17:
            payload = frame[l4 + 8 : ip_end]
            flags = 0
        else:
            off = (frame[l4 + 12] >> 4) * 4
            flags = frame[l4 + 13]
            payload = frame[l4 + off : ip_end]
        a, b = (src, sp), (dst, dp)
        key = (proto, *sorted((a, b)))
        flow = flows.get(key)
        if flow is None:
            flow = flows[key] = (len(flows) + 1, a)
        fid, client = flow
        c2s = a == client
        server_port = dp if c2s else sp
        role = None
        if proto == 17:
            if len(payload) >= inputs.MIN_MESSAGE:
                role = "udp/c2s" if c2s else "udp/s2c"
        elif payload:
            role = "tcp/c2s" if c2s else "tcp/s2c"
        elif c2s and flags & 0x12 == 0x02:
            role = "tcp/syn"
        elif not c2s and flags & 0x12 == 0x12:
            role = "tcp/synack"
        yield Pkt(frame, payload, int(ts), _ip(src), _ip(dst), sp, dp, proto == 6, fid, c2s,
                  role, server_port)


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


# --- bytes deciphered (Python codec) --------------------------------------------------------

_BLOCKS = (  # optional blocks in wire order: flag, size, offset of a u16 length in it
    (protocol.FLAG_PEER, 6, None),
    (protocol.FLAG_UNKNOWN0, 4, None),
    (protocol.FLAG_UNKNOWN1, 4, None),
    (protocol.FLAG_DATA, 3, 1),
    (protocol.FLAG_SYSINFO, protocol.SYSINFO_SIZE, None),
)
_HEAD = protocol.KEY_SIZE + 2  # key and flags


def deciphered(frame: bytes, flen: int) -> int:
    """Bytes of a frame of length flen (of which `frame` holds the first ones) that a decoder
    deciphers: from the flags to the end of the checksum, or to where the layout rules a
    message out."""
    if flen < protocol.MIN_MESSAGE or len(frame) <= protocol.KEY_SIZE:
        return 0
    have = min(len(frame), flen)
    key_lo, key_hi = struct.unpack_from("<II", frame)
    if have < _HEAD:
        return have - protocol.KEY_SIZE
    flags = struct.unpack("<H", protocol.crypt(key_lo, key_hi, frame[8:10]))[0]
    fixed, lenat = _HEAD, None
    for flag, size, at in _BLOCKS:
        if flags & flag:
            if at is not None:
                lenat = fixed + at
            fixed += size
    if fixed + protocol.CHECKSUM_SIZE > flen:
        return 2
    end = fixed + protocol.CHECKSUM_SIZE
    if lenat is not None:
        if have < lenat + 2:
            return have - protocol.KEY_SIZE
        plain = protocol.crypt(key_lo, key_hi, frame[8 : lenat + 2])
        hlen = fixed + struct.unpack_from("<H", plain, lenat - 8)[0]
        if hlen + protocol.CHECKSUM_SIZE > flen:
            return lenat + 2 - protocol.KEY_SIZE
        end = hlen + protocol.CHECKSUM_SIZE
    return min(end, have) - protocol.KEY_SIZE


def _is_message(frame: bytes) -> bool:
    try:
        protocol.decode(frame)
    except (protocol.DecodeError, ValueError, struct.error):
        return False
    return True


def stream_deciphered(data: bytes) -> int:
    """Bytes deciphered over one TCP direction's payload bytes (frames behind u16 length
    prefixes; the direction stops at its first frame that is not a message)."""
    total, i = 0, 0
    while i + 2 <= len(data):
        flen = struct.unpack_from("<H", data, i)[0]
        frame = data[i + 2 : i + 2 + flen]
        total += deciphered(frame, flen)
        if len(frame) < flen or not _is_message(frame):
            break
        i += 2 + flen
    return total


# --- counting over an input -----------------------------------------------------------------


@dataclass
class Counts:
    """One engine's counts over (a sample of) an input's candidates."""

    runtime: str
    candidates: int = 0  # packets selected by a decoder rule's header (in the sample)
    invocations: int = 0  # calls, after the rules' flowint tests
    instructions: int = 0
    max_call: int = 0
    deciphered: int = 0
    truncated: bool = False  # the sample stopped before the end of the input
    scripts: list[str] = field(default_factory=list)

    def per_call(self, what: str) -> float | None:
        return getattr(self, what) / self.invocations if self.invocations else None


def count_input(path: Path, sels: list[Selector], scripts: dict[str, str], runtime: str,
                limit: int = 20_000, every: int = 1) -> Counts:
    """Run the decoder rules' scripts on the first `limit` candidate packets of the input."""
    states = {s.sid: Counted(scripts[s.script], runtime, s.sid, every) for s in sels}
    shared: dict[int, dict[str, int]] = {}
    for st in states.values():
        st.decoder.flowints = shared  # one flow's flowints, whoever sets them
    out = Counts(runtime, scripts=sorted({s.script for s in sels}))
    streams: dict[tuple[int, bool], bytearray] = {}
    for pkt in packets(path):
        if pkt.role is None:
            continue
        hit = [s for s in sels if s.selects(pkt.role, pkt.server_port)]
        if not hit:
            continue
        if out.candidates >= limit:
            out.truncated = True
            break
        out.candidates += 1
        for s in hit:
            if not s.admits_state(shared.get(pkt.flow_id, {})):
                continue
            st = states[s.sid]
            n = st.call(payload=pkt.payload or None, sp=pkt.sp, dp=pkt.dp, flow_id=pkt.flow_id,
                        tcp=pkt.tcp, sip=pkt.sip, dip=pkt.dip, sec=pkt.sec, frame=pkt.frame)
            out.invocations += 1
            out.instructions += n
            out.max_call = max(out.max_call, n)
            if pkt.role.startswith("udp/"):
                out.deciphered += deciphered(pkt.payload, len(pkt.payload))
            elif pkt.payload:
                streams.setdefault((pkt.flow_id, pkt.c2s), bytearray()).extend(pkt.payload)
    out.deciphered += sum(stream_deciphered(bytes(d)) for d in streams.values())
    if every > 1:  # the counter carries over between calls: the total is exact to `every`
        out.instructions = sum(st.count for st in states.values())
    return out
