"""Deterministic counts outside Suricata: Lua VM instructions and bytes deciphered per
decoder invocation, and the worst case of one call over adversarial inputs.

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


# --- adversarial inputs ---------------------------------------------------------------------

MAX_UDP = 65507  # largest IPv4 UDP payload (a reassembled datagram)
MAX_TCP = 65495  # largest TCP payload in one IPv4 packet without options
MSS = inputs.MSS
ALL_FIXED = (protocol.FLAG_PEER | protocol.FLAG_UNKNOWN0 | protocol.FLAG_UNKNOWN1
             | protocol.FLAG_SYSINFO)
CONTROL = protocol.FLAG_ENCODED | protocol.FLAG_MODE
# A Monday 00:00:10 UTC (Conficker week start + 10 s): the port check also computes the
# neighbouring week's ports (clock-drift slop), the most port-generator work per call.
ROLLOVER_SEC = protocol.EPOCH_OFFSET + protocol.WEEK_SECONDS * 2968 + 10
CLIENT, SERVER = bytes((198, 18, 7, 9)), bytes((10, 1, 77, 3))
# the listener: a port the worm may use that is none of SERVER's computed ports near then
SERVER_PORT = next(
    p for p in range(40000, 65536) if not protocol.is_blacklisted(p)
    and all(p not in protocol.ports(_ip(SERVER), w) for w in (2967, 2968, 2969)))


def message(data_len: int | None, fixed: bool = True, noise: int = 0) -> bytes:
    """A valid message: all fixed blocks (or none), a data block of data_len bytes
    (None: no data block)."""
    flags = CONTROL | (ALL_FIXED if fixed else 0)
    kw: dict = {}
    if fixed:
        kw.update(peer_ip="10.1.2.3", peer_port=4444, unknown0=7, unknown1=9, sysinfo=bytes(26))
    if data_len is not None:
        flags |= protocol.FLAG_DATA
        kw.update(data_flags=0, data=bytes((i * 7) & 0xFF for i in range(data_len)))
    return protocol.encode(protocol.Message(0x12345678, 0x9ABCDEF0, flags, **kw,
                                            noise=bytes(noise)))


def _udp_call(payload: bytes) -> list[dict]:
    frame = inputs.udp_frame(CLIENT, 50000, SERVER, SERVER_PORT, payload)
    return [dict(payload=payload, sp=50000, dp=SERVER_PORT, tcp=False, frame=frame)]


def _tcp_calls(segments: list[bytes]) -> list[dict]:
    calls, seq = [], 1000
    for seg in segments:
        frame = inputs.tcp_frame(CLIENT, 50000, SERVER, SERVER_PORT, seq, 1, 0x18, seg)
        calls.append(dict(payload=seg, sp=50000, dp=SERVER_PORT, tcp=True, frame=frame))
        seq += len(seg)
    return calls


def _packed(size: int, msg: bytes) -> bytes:
    one = struct.pack("<H", len(msg)) + msg
    return one * max(1, size // len(one))


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    build: object  # data_len -> list of calls
    transport: str  # "udp" or "tcp"
    search: tuple[int, int] | None  # data lengths searched; None: no parameter


CASES = [
    Case("udp-max-data", f"one {MAX_UDP:,}-byte datagram: all blocks and a data block, "
         "the rest noise", lambda d: _udp_call(_pad(message(d), MAX_UDP)), "udp",
         (0, MAX_UDP - 80)),
    Case("udp-mtu-data", "one 1,472-byte datagram: all blocks and a data block",
         lambda d: _udp_call(_pad(message(d), 1472)), "udp", (0, 1472 - 80)),
    Case("tcp-data-split", f"a message with a data block over {MAX_TCP:,}-byte segments: "
         "its header segment, then a segment of the data block",
         lambda d: _tcp_calls(_split(struct.pack("<H", len(m := message(d))) + m, MAX_TCP)),
         "tcp", (0, 65535 - 80)),
    Case("tcp-mss-split", "a message with a data block over 1,460-byte segments",
         lambda d: _tcp_calls(_split(struct.pack("<H", len(m := message(d))) + m, MSS)[:3]),
         "tcp", (0, 65535 - 80)),
    Case("tcp-max-packed", f"one {MAX_TCP:,}-byte segment packed with valid messages, each "
         "with all blocks and a data block", lambda d: _tcp_calls([_packed(MAX_TCP, message(d))]),
         "tcp", (0, 20_000)),
    Case("tcp-max-minimal", f"one {MAX_TCP:,}-byte segment packed with minimal (14-byte) "
         "valid messages", lambda d: _tcp_calls([_packed(MAX_TCP, message(None, False))]),
         "tcp", None),
    Case("tcp-mss-packed", "one 1,460-byte segment packed with valid messages with a data "
         "block", lambda d: _tcp_calls([_packed(MSS, message(d))]), "tcp", (0, MSS - 80)),
    Case("tcp-mss-minimal", "one 1,460-byte segment packed with minimal valid messages",
         lambda d: _tcp_calls([_packed(MSS, message(None, False))]), "tcp", None),
]


def _pad(msg: bytes, size: int) -> bytes:
    return msg + bytes(max(0, size - len(msg)))


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass
class Worst:
    case: str
    what: str
    data_len: int | None
    instructions: int  # the costliest single call
    deciphered: int  # bytes of frames in the costliest call's packets, as the codec counts


def _cost(script: str, runtime: str, sid: int, calls: list[dict], every: int) -> int:
    st = Counted(script, runtime, sid, every)
    return max(st.call(flow_id=1, sip=_ip(CLIENT), dip=_ip(SERVER), sec=ROLLOVER_SEC, **kw)
               for kw in calls)


def _maximise(f, lo: int, hi: int, points: int) -> tuple[int, int]:  # noqa: ANN001
    """Grid search of f over [lo, hi], then two finer grids around the best point."""
    best = (lo, f(lo))
    span = hi - lo
    for _ in range(3):
        step = max(1, span // points)
        for d in range(max(lo, best[0] - span), min(hi, best[0] + span) + 1, step):
            v = f(d)
            if v > best[1]:
                best = (d, v)
        span = step
        if step == 1:
            break
    return best


def worst_cases(script: str, runtime: str, sids: dict[str, int], points: int = 24
                ) -> list[Worst]:
    """The costliest single call of each adversarial case. The data length is searched with
    a hook every 100 instructions, the best one measured again with a hook every one."""
    out = []
    for case in CASES:
        sid = sids.get(case.transport)
        if sid is None:
            continue

        def cost(d: int | None, every: int = 100, case: Case = case, sid: int = sid) -> int:
            return _cost(script, runtime, sid, case.build(d), every)  # type: ignore[operator]

        d = None
        if case.search is not None:
            d, _ = _maximise(cost, *case.search, points)
        calls = case.build(d)  # type: ignore[operator]
        worst = cost(d, 1)
        data = b"".join(c["payload"] for c in calls)
        dec = (deciphered(data, len(data)) if case.transport == "udp"
               else stream_deciphered(data))
        out.append(Worst(case.name, case.what, d, worst, dec))
    return out
