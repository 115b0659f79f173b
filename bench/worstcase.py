"""The worst case of one call: the costliest single `match` call of the pack's script on
crafted packets (maximum-size datagrams and segments, packed messages, data blocks over
segments), counted in Lua VM instructions. Each case starts a fresh Lua state; the packet
time is 10 s after a Conficker week rollover and every message is valid. Where a case has
a data block, its length is searched for the costliest call.

The script runs under lupa in tests/lua/stand_in.py's Decoder: LuaJIT with the JIT off for
Suricata 7 (the interpreter executes every bytecode), Lua 5.4 for Suricata 8. A count hook
(debug.sethook, "", N) adds N to a counter every N instructions: the search uses N = 100,
the costliest call is counted again with N = 1 (exact). Bytes deciphered come from the
Python codec (generator/codec.py): per message frame, from the flags to the end of the
checksum or to where the layout rules a message out.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

from bench import inputs
from bench.arms import LUA_KEYWORD, Pack, Version, sid_of
from generator import codec as protocol

sys.path.insert(0, str(inputs.ROOT / "tests" / "lua"))
from stand_in import ENGINES as LUA_RUNTIMES  # noqa: E402
from stand_in import Decoder  # noqa: E402

# --- counting ---------------------------------------------------------------------------


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


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


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


# --- the cases ------------------------------------------------------------------------------


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


def worst_calls(pack: Pack, version: Version, major: int, points: int = 24) -> list[Worst]:
    """The cases on the script of the UDP and TCP to_server decoder rules an engine of this
    version loads (each case's Lua state serves the rule it would serve in Suricata)."""
    by_script: dict[str, dict[str, int]] = {}
    for ln in pack.decoder_lines(version):
        if "to_server" in ln and "dsize:" in ln:
            script = LUA_KEYWORD.search(ln).group(1).strip()
            by_script.setdefault(script, {}).setdefault(ln.split()[1], sid_of(ln))
    return [w for script, sids in by_script.items()
            for w in worst_cases(pack.lua[script], runtime_for(major), sids, points)]
