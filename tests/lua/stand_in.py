"""Run the rendered Lua decoder outside Suricata, under LuaJIT (as Suricata 7
does) or Lua 5.4 (as Suricata 8 does), with small stand-ins for the Suricata
functions it calls."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import lupa.lua54
import lupa.luajit21

ENGINES = {"luajit": lupa.luajit21, "lua54": lupa.lua54}

# Suricata 8 libraries the script requires, as seen from Lua.
_LIBS_8 = """
local host = ...
package.preload["suricata.packet"] = function() return {
  get = function() return {
    payload = function(self) return host.payload end,
    packet = function(self) return host.frame end,
    sp = function(self) return host.sp end,
    dp = function(self) return host.dp end,
    tuple = function(self) return host.ipver, host.sip, host.dip, host.proto, host.sp, host.dp end,
    timestamp = function(self) return host.sec, 0 end,
  } end } end
package.preload["suricata.flow"] = function() return {
  get = function() return { id = function(self) return host.flow_id end } end } end
package.preload["suricata.rule"] = function() return {
  get_rule = function() return { sid = function(self) return host.sid end } end } end
local function vars(kind)
  return {
    register = function(name) host.registered[#host.registered + 1] = name end,
    get = function(name) return {
      set = function(self, value, len) host.set(kind, name, value) end,
      value = function(self) return host.get(name) end,
      incr = function(self) return host.incr(name) end } end }
end
package.preload["suricata.flowint"] = function() return vars("flowint") end
package.preload["suricata.flowvar"] = function() return vars("flowvar") end
"""

_GLOBALS_7 = """
local host = ...
function SCPacketTuple() return host.ipver, host.sip, host.dip, host.proto, host.sp, host.dp end
function SCPacketTimestamp() return host.sec, 0 end
function SCPacketPayload() return host.payload end
function ScFlowintIncr(i) return host.incr(i) end
function ScFlowintGet(i) return host.get(i) end
function SCFlowId() return host.flow_id end
function SCRuleIds() return host.sid, 1, 1 end
function ScFlowintSet(i, v) host.set("flowint", i, v) end
function ScFlowvarSet(i, v, n) host.set("flowvar", i, v) end
"""


@dataclass
class Verdict:
    """The flow's flowints after one call, and the flowvars the call set."""

    flowints: dict = field(default_factory=dict)
    flowvars: dict = field(default_factory=dict)

    def flowint(self, name: str) -> int:
        return self.flowints.get(name, 0)


# Packet time when a test does not give one: 2026-11-26T12:00:00Z, mid-week.
DEFAULT_SEC = 1795694400


class Decoder:
    """One Lua state of the rendered script, as one decoder rule would have it."""

    def __init__(self, script: str, engine: str, sid: int, scan: str = "cfp2p_scan"):
        self.engine = engine
        self.scan = scan
        self.lua = ENGINES[engine].LuaRuntime(unpack_returned_tuples=True)
        self.host = self.lua.table_from(
            {
                "sid": sid,
                "flow_id": 1,
                "sp": 0,
                "dp": 0,
                "proto": 17,
                "payload": None,
                "frame": None,
                "ipver": 4,
                "sip": "192.0.2.1",
                "dip": "192.0.2.2",
                "sec": DEFAULT_SEC,
            }
        )
        self.host.registered = self.lua.table()
        self.host.set = self._set
        self.host.incr = self._incr
        self.host.get = self._get
        self.flowints: dict[int, dict[str, int]] = {}  # flow id -> its flowints
        self.verdict = Verdict()
        self.lua.execute(_GLOBALS_7 if engine == "luajit" else _LIBS_8, self.host)
        self.lua.execute(script)
        g = self.lua.globals()
        assert g._VERSION == ("Lua 5.1" if engine == "luajit" else "Lua 5.4")
        self.needs = g.init(self.lua.table())
        if g.thread_init is not None:
            g.thread_init(self.lua.table())
        self._match = g.match
        if engine == "luajit":
            self.flowint_names = list(self.needs["flowint"].values())
            self.flowvar_names = list(self.needs["flowvar"].values())

    def _flowint(self, key) -> tuple[dict[str, int], str]:
        """The current flow's flowints, and the name of flowint `key` (7: an index)."""
        name = self.flowint_names[key] if self.engine == "luajit" else key
        return self.flowints.setdefault(self.host.flow_id, {}), name

    def _set(self, kind, key, value):
        if kind == "flowint":
            ints, name = self._flowint(key)
            ints[name] = value
        else:
            name = self.flowvar_names[key] if self.engine == "luajit" else key
            self.verdict.flowvars[name] = value

    def _get(self, key):
        ints, name = self._flowint(key)
        return ints.get(name)

    def _incr(self, key):
        ints, name = self._flowint(key)
        ints[name] = ints.get(name, 0) + 1
        return ints[name]

    def match(
        self,
        payload: bytes | None,
        sp: int,
        dp: int,
        flow_id: int = 1,
        tcp: bool = False,
        *,
        sip: str = "192.0.2.1",
        dip: str = "192.0.2.2",
        sec: int = DEFAULT_SEC,
        ipver: int = 4,
        frame: bytes | None = None,
    ) -> Verdict:
        """One call of match(). `frame` is the raw packet (link, IP and TCP headers and
        the payload), served as Suricata 8's packet.get():packet() and Suricata 7's
        args["packet"]."""
        self.verdict = Verdict()
        h = self.host
        h.payload, h.sp, h.dp, h.flow_id, h.proto = payload, sp, dp, flow_id, 6 if tcp else 17
        h.sip, h.dip, h.sec, h.ipver, h.frame = sip, dip, sec, ipver, frame
        args = (
            self.lua.table_from({"payload": payload, "packet": frame})
            if self.engine == "luajit"
            else self.lua.table()
        )
        result = self._match(args)
        assert result == 0, "the decoder never matches"
        ints = self.flowints.setdefault(flow_id, {})
        self.verdict.flowints = dict(ints)
        ints[self.scan] = 0  # what the scan signature does when it matches
        return self.verdict


def tcp_frame(payload: bytes, seq: int, sp: int = 50000, dp: int = 38636) -> bytes:
    """An Ethernet/IPv4/TCP packet carrying `payload` at sequence number `seq`: the raw
    packet a decoder reads the sequence number from (checksums are left 0: nothing reads
    them)."""
    tcp = struct.pack(">HHIIBBHHH", sp, dp, seq % 2**32, 0, 5 << 4, 0x18, 65535, 0, 0)
    ip = struct.pack(
        ">BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        0,
        0,
        64,
        6,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 2]),
    )
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload
