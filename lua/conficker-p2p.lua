-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
--
-- Conficker C P2P decoder for Suricata 7.0 (LuaJIT) and 8.0 (Lua 5.4 sandbox).
-- Called by the pack's decoder rules, once per candidate packet; it never
-- matches. It leaves its verdict for the signatures in per-packet flowints:
--   cfp2p_control  number of valid control messages in this packet
--   cfp2p_data     number of valid data-transfer messages in this packet
--   cfp2p_messages  number of valid messages of either kind
--   cfp2p_scan     1 for an attempt on one of the destination's computed ports
--                   (a UDP message, or a connection's first SYN); the scan
--                   signature sets it back to 0
-- and the last valid message's facts in the flowvars cfp2p_flags, cfp2p_kind
-- and cfp2p_port_match (whether the listener's port is one the port generator
-- gives it). Per flow: cfp2p_syn counts a connection's SYNs, cfp2p_session
-- is set once the flow carried a valid message, cfp2p_skip once bad frames or
-- datagrams before any message showed it is not Conficker (the decoder rules then
-- skip it).
--
-- One file for both engines: only arithmetic (LuaJIT cannot parse Lua 5.4's
-- bit operators and Suricata 8 blocks `load`), small tables built once per
-- Lua state, no allocation per packet but the state of a TCP stream left with
-- a message in flight (and the flowvar strings of a valid message).

local ENGINE7 = _VERSION == "Lua 5.1"

-- Protocol layout (spec: protocol) -----------------------------------------
local KEY_SIZE = 8
local FLAGS_SIZE = 2
local CHECKSUM_SIZE = 4
local TCP_LENGTH_SIZE = 2
local MIN_MESSAGE = 14
local DATA_FLAG = 64
-- Optional blocks in wire order: flag bit, size, offset of a u16 length of the
-- bytes that follow the block (or -1).
local BLOCK_FLAG = { 8, 16, 32, 64, 128 }
local BLOCK_SIZE = { 6, 4, 4, 3, 26 }
local BLOCK_LENGTH_AT = { -1, -1, -1, 1, -1 }
local NBLOCKS = #BLOCK_FLAG
local BLACKLIST = {
  4294967295, 4294967295, 4042702779, 3143262195, 4086788113, 3949445055, 1604057800, 886603921,
  505578207, 1463026372, 3221225604, 50332169, 23068674, 20480, 2148532416, 5242944,
  161, 16777216, 16777216, 141856, 128, 67108864, 1073872896, 2281701376,
  384, 528384, 142612736, 8391553, 640, 134218432, 11010048, 32768,
  1048640, 1048576, 0, 0, 268435464, 0, 0, 4,
  2, 0, 262144, 0, 0, 0, 4259840, 2181038080,
  0, 0, 1, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 8, 2147483648,
}
-- Largest number of bytes deciphered in one call: keeps Suricata 8 below its
-- Lua instruction limit (500,000 by default).
local BUDGET = 6000

-- Port generator (PROTOCOL.md 1).
local WEEK_OFFSET = 345600
local WEEK_SECONDS = 604800
local MULTIPLIER = 22695477
-- The neighbouring week is accepted this close to a rollover (clock drift).
local WEEK_SLOP = 900
-- Addresses whose computed ports a Lua state keeps.
local PORT_CACHE = 256

-- Decoder rules (sid -> transport, listener side, whether its packets are
-- attempts on the destination, whether they are SYNs), so that a Lua state
-- knows which rule it serves without asking per packet.
local MODES = {
  [9310100] = { tcp = false, listener_is_dst = true, attempts = true, syn = false },
  [9310101] = { tcp = false, listener_is_dst = false, attempts = false, syn = false },
  [9310102] = { tcp = true, listener_is_dst = true, attempts = false, syn = false },
  [9310103] = { tcp = true, listener_is_dst = false, attempts = false, syn = false },
  [9310104] = { tcp = true, listener_is_dst = true, attempts = true, syn = true },
}

-- Arithmetic helpers --------------------------------------------------------
local floor = math.floor
local byte = string.byte
local X = {}  -- X[a * 16 + b] = a xor b for nibbles
for a = 0, 15 do
  for b = 0, 15 do
    local r, bit = 0, 1
    for _ = 0, 3 do
      if (floor(a / bit) % 2) ~= (floor(b / bit) % 2) then r = r + bit end
      bit = bit * 2
    end
    X[a * 16 + b] = r
  end
end
local LO, HI16, HI = {}, {}, {}  -- low nibble, high nibble * 16, high nibble
for v = 0, 255 do LO[v] = v % 16; HI16[v] = v - v % 16; HI[v] = (v - v % 16) / 16 end
-- For the hot loop, which saves a multiplication per lookup: L16[v] = low nibble
-- * 16, XH[k] = X[k] * 16.
local L16, XH = {}, {}
for v = 0, 255 do L16[v] = LO[v] * 16; XH[v] = X[v] * 16 end
local POW256 = { [0] = 1, 256, 65536, 16777216 }

local function xor8(a, b)
  return X[LO[a] * 16 + LO[b]] + 16 * X[HI16[a] + HI[b]]
end

local function xor32(a, b)
  local r, m = 0, 1
  for _ = 1, 4 do
    r = r + m * xor8(a % 256, b % 256)
    a = floor(a / 256); b = floor(b / 256); m = m * 256
  end
  return r
end

local function rotl32(v, n)
  local m = 2 ^ (n % 32)
  local x = v * m
  local hi = floor(x / 4294967296)
  return x - hi * 4294967296 + hi
end

local function blacklisted(port)
  local w = BLACKLIST[floor(port / 1024) + 1]
  return floor(w / 2 ^ (floor(port / 32) % 32)) % 2 == 1
end

-- The port generator ------------------------------------------------------------
local POW2 = {}
for i = 0, 9 do POW2[i] = 2 ^ i end

-- One pair of ports from the generator state v (a u32). Returns the pair and
-- the state after it. The 64-bit product is built from 16-bit halves so that
-- every intermediate value stays exact in a double.
local function port_pair(v)
  local X, XH, L16, LO, HI16, HI = X, XH, L16, LO, HI16, HI
  local a, b = 0, 0
  repeat
    for i = 0, 9 do
      local vl = v % 65536
      local lo = vl * MULTIPLIER + 1
      local hi = (v - vl) / 65536 * MULTIPLIER
      local hl = hi % 65536
      local t = hl * 65536 + lo
      v = t % 4294967296
      local x = floor(((hi - hl) / 65536 + (t - v) / 4294967296) / POW2[i]) % 65536
      -- XOR x into a (even i) or b (odd i), a byte at a time
      local y = a
      if i % 2 == 1 then y = b end
      local xl, yl = x % 256, y % 256
      local xh, yh = (x - xl) / 256, (y - yl) / 256
      y = X[L16[yl] + LO[xl]] + XH[HI16[yl] + HI[xl]]
        + 256 * (X[L16[yh] + LO[xh]] + XH[HI16[yh] + HI[xh]])
      if i % 2 == 0 then a = y else b = y end
    end
  until a ~= b and not blacklisted(a) and not blacklisted(b)
  return a, b, v
end

-- NOT of the address "a.b.c.d" read as a little-endian u32.
local function address_state(ip)
  local n, scale, octet = 0, 1, 0
  for k = 1, #ip do
    local c = byte(ip, k)
    if c == 46 then
      n = n + octet * scale; scale = scale * 256; octet = 0
    else
      octet = octet * 10 + c - 48
    end
  end
  return 4294967295 - (n + octet * scale)
end

-- Per address: { tcpA, udpA, state after pair A, week, tcpB, udpB }.
local cache, ncache = {}, 0
local function ports_of(ip, week)
  local e = cache[ip]
  if e == nil then
    if ncache >= PORT_CACHE then cache = {}; ncache = 0 end
    local a, b, v = port_pair(address_state(ip))
    e = { a, b, v, -1, 0, 0 }
    cache[ip] = e
    ncache = ncache + 1
  end
  if e[4] ~= week then
    e[5], e[6] = port_pair(xor32(e[3], week))
    e[4] = week
  end
  return e
end

-- Is `port` one of the computed ports of address `ip` for the transport, in
-- the epoch week of time `sec` (or the neighbouring one near a rollover)?
local function computed_port(ip, port, tcp, sec)
  local k = 2
  if tcp then k = 1 end
  local t = sec - WEEK_OFFSET
  local week = floor(t / WEEK_SECONDS)
  local e = ports_of(ip, week)
  if port == e[k] or port == e[k + 4] then return true end
  local into, other = t - week * WEEK_SECONDS, nil
  if into < WEEK_SLOP then
    other = week - 1
  elseif into >= WEEK_SECONDS - WEEK_SLOP then
    other = week + 1
  else
    return false
  end
  local c, d = port_pair(xor32(e[3], other))
  if tcp then return port == c end
  return port == d
end

-- The message machine --------------------------------------------------------
-- A frame is one message: the payload of a UDP datagram, or the bytes that a
-- TCP length prefix announces. `s` carries a frame across TCP segments:
--   pos     bytes of the frame consumed so far
--   flen    frame length
--   klo,khi cipher state (the key, then rotated and added as bytes go by)
--   g       checksum accumulator started from 0 (the real start value, the
--           number of bytes hashed, is folded in at the end: the hash is linear)
--   flags   deciphered flags, once pos > 9
--   fixed   end of the fixed part (key, flags, blocks), once flags are known
--   lenat   frame offset of the u16 length of the data block, or -1
--   hlen    bytes hashed (end of the checksummed part), 0 while unknown
--   dlen    data length bytes read so far
--   csum    checksum as deciphered so far

local function reset(s, flen)
  s.pos, s.flen, s.klo, s.khi, s.g = 0, flen, 0, 0, 0
  s.flags, s.fixed, s.lenat, s.hlen, s.dlen, s.csum = 0, 0, -1, 0, 0, 0
end

-- Layout from the flags: end of the fixed part and where the data length is.
local function layout(s)
  local off, flags = KEY_SIZE + FLAGS_SIZE, s.flags
  s.lenat = -1
  for i = 1, NBLOCKS do
    local f = BLOCK_FLAG[i]
    if floor(flags / f) % 2 == 1 then
      if BLOCK_LENGTH_AT[i] >= 0 then s.lenat = off + BLOCK_LENGTH_AT[i] end
      off = off + BLOCK_SIZE[i]
    end
  end
  s.fixed = off
  if s.lenat < 0 then s.hlen = off end
end

-- Decipher and hash bytes p[i .. last] of the checksummed body, with nothing
-- to record: the hot loop for data blocks. Returns the new cipher and
-- checksum state.
local function crunch(p, i, last, klo, khi, g)
  -- the tables as locals: Lua 5.4 then reads them without an upvalue lookup
  local X, XH, L16, LO, HI16, HI, byte = X, XH, L16, LO, HI16, HI, byte
  for k = i, last do
    local c = byte(p, k)
    local tlo, thi = 0, 0
    if klo >= 2147483648 then klo = klo - 2147483648; tlo = 1 end
    if khi >= 2147483648 then khi = khi - 2147483648; thi = 1 end
    klo = klo * 2 + thi
    khi = khi * 2 + tlo
    local ks = klo % 256
    local b = X[L16[c] + LO[ks]] + XH[HI16[c] + HI[ks]]
    klo = klo + ks
    if klo >= 4294967296 then
      klo = klo - 4294967296
      khi = (khi + 1) % 4294967296
    end
    local gl = g % 256
    g = g - gl + X[L16[gl] + LO[b]] + XH[HI16[gl] + HI[b]]
    if g >= 2147483648 then g = (g - 2147483648) * 2 + 1 else g = g * 2 end
  end
  return klo, khi, g
end

-- Feed bytes p[i .. j] of the current frame. Returns the index after the
-- last byte consumed and a verdict: nil (needs more bytes), false (not a
-- message) or the message kind (1 control, 2 data).
local function feed(s, p, i, j)
  local X, XH, L16, LO, HI16, HI = X, XH, L16, LO, HI16, HI
  local pos, flen = s.pos, s.flen
  if j > i + flen - pos - 1 then j = i + flen - pos - 1 end
  local klo, khi, g = s.klo, s.khi, s.g
  local work = 0
  while i <= j do
    local c = byte(p, i)
    if pos < KEY_SIZE then
      if pos < 4 then klo = klo + c * POW256[pos] else khi = khi + c * POW256[pos - 4] end
      -- hash the cleartext key byte
      local gl = g % 256
      g = g - gl + X[L16[gl] + LO[c]] + XH[HI16[gl] + HI[c]]
      local top = floor(g / 2147483648)
      g = (g - top * 2147483648) * 2 + top
    else
      if s.hlen > 0 and pos >= s.hlen + CHECKSUM_SIZE then
        -- noise: skip to the end of the frame without deciphering it
        local skip = flen - pos
        if skip > j - i + 1 then skip = j - i + 1 end
        pos = pos + skip; i = i + skip
        break
      end
      local hlen = s.hlen
      if hlen > 0 and pos < hlen and pos > s.lenat + 1 then
        -- inside the data block: the whole run at hand in one go
        local run = hlen - pos
        if run > j - i + 1 then run = j - i + 1 end
        work = work + run
        if work > BUDGET then s.pos = pos; return i, false end
        klo, khi, g = crunch(p, i, i + run - 1, klo, khi, g)
        pos = pos + run; i = i + run
        goto continue
      end
      work = work + 1
      if work > BUDGET then
        s.pos = pos
        return i, false
      end
      -- keystream: K = rotl64(K, 1); s = low byte; K = K + s
      local tlo, thi = floor(klo / 2147483648), floor(khi / 2147483648)
      klo = (klo - tlo * 2147483648) * 2 + thi
      khi = (khi - thi * 2147483648) * 2 + tlo
      local ks = klo % 256
      local b = X[L16[c] + LO[ks]] + XH[HI16[c] + HI[ks]]
      klo = klo + ks
      if klo >= 4294967296 then
        klo = klo - 4294967296
        khi = khi + 1
        if khi >= 4294967296 then khi = khi - 4294967296 end
      end
      if hlen == 0 or pos < hlen then
        local gl = g % 256
        g = g - gl + X[L16[gl] + LO[b]] + XH[HI16[gl] + HI[b]]
        local top = floor(g / 2147483648)
        g = (g - top * 2147483648) * 2 + top
        if pos < KEY_SIZE + FLAGS_SIZE then
          s.flags = s.flags + b * 256 ^ (pos - KEY_SIZE)
          if pos == KEY_SIZE + FLAGS_SIZE - 1 then
            layout(s)
            if s.fixed + CHECKSUM_SIZE > flen then s.pos = pos; return i + 1, false end
          end
        elseif pos == s.lenat or pos == s.lenat + 1 then
          s.dlen = s.dlen + b * 256 ^ (pos - s.lenat)
          if pos == s.lenat + 1 then
            s.hlen = s.fixed + s.dlen
            if s.hlen + CHECKSUM_SIZE > flen then s.pos = pos; return i + 1, false end
            -- a data block that this call could not decipher within its budget
            local ahead = s.hlen + CHECKSUM_SIZE - pos
            if ahead > j - i + 1 then ahead = j - i + 1 end
            if work + ahead > BUDGET then s.pos = pos; return i + 1, false end
          end
        end
      else
        s.csum = s.csum + b * 256 ^ (pos - hlen)
      end
    end
    pos = pos + 1
    i = i + 1
    ::continue::
  end
  s.pos, s.klo, s.khi, s.g = pos, klo, khi, g
  if pos < flen then return i, nil end
  -- whole frame seen: the checksum was started from the number of bytes hashed
  local hlen = s.hlen
  if hlen == 0 or hlen + CHECKSUM_SIZE > flen then return i, false end
  if s.csum ~= xor32(rotl32(hlen, hlen), g) then return i, false end
  if floor(s.flags / DATA_FLAG) % 2 == 1 then return i, 2 end
  return i, 1
end

-- Engine adapters -------------------------------------------------------------
local packet, flow, rule, fi_control, fi_data, fi_any, fi_scan, fi_syn, fi_session, fi_skip
local fv_flags, fv_kind, fv_port
if not ENGINE7 then
  packet = require("suricata.packet")
  flow = require("suricata.flow")
  rule = require("suricata.rule")
end

-- Suricata 7 addresses flowints and flowvars by their index in these lists.
local FLOWINTS = {
  "cfp2p_control", "cfp2p_data", "cfp2p_messages", "cfp2p_scan", "cfp2p_syn",
  "cfp2p_session", "cfp2p_skip"
}
local FLOWVARS = { "cfp2p_flags", "cfp2p_kind", "cfp2p_port_match" }

function init(args)
  if ENGINE7 then
    local needs = {}
    -- No buffer: Suricata then calls the script for SYNs too (it skips a "payload"
    -- script on a packet without payload) and copies nothing into args; the
    -- script reads the payload with SCPacketPayload().
    needs["flowint"] = FLOWINTS
    needs["flowvar"] = FLOWVARS
    return needs
  end
  local flowint = require("suricata.flowint")
  local flowvar = require("suricata.flowvar")
  for _, n in ipairs(FLOWINTS) do flowint.register(n) end
  for _, n in ipairs(FLOWVARS) do flowvar.register(n) end
  return {}
end

function thread_init(args)
  if not ENGINE7 then
    local flowint = require("suricata.flowint")
    local flowvar = require("suricata.flowvar")
    fi_control, fi_data = flowint.get(FLOWINTS[1]), flowint.get(FLOWINTS[2])
    fi_any, fi_scan, fi_syn = flowint.get(FLOWINTS[3]), flowint.get(FLOWINTS[4]), flowint.get(FLOWINTS[5])
    fi_session, fi_skip = flowint.get(FLOWINTS[6]), flowint.get(FLOWINTS[7])
    fv_flags, fv_kind = flowvar.get(FLOWVARS[1]), flowvar.get(FLOWVARS[2])
    fv_port = flowvar.get(FLOWVARS[3])
  end
end

local function set_counts(control, data)
  if ENGINE7 then
    ScFlowintSet(0, control); ScFlowintSet(1, data); ScFlowintSet(2, control + data)
  else
    fi_control:set(control); fi_data:set(data); fi_any:set(control + data)
  end
end

-- Zero the counts a previous packet of the flow left. Read first: writing
-- them on every packet would give every flow its own flowints (measured: 33%
-- more memory on a flood of one-datagram flows).
local function clear_counts()
  local any
  if ENGINE7 then any = ScFlowintGet(2) else any = fi_any:value() end
  if any ~= nil and any > 0 then set_counts(0, 0) end
end

local function set_session()
  if ENGINE7 then ScFlowintSet(5, 1) else fi_session:set(1) end
end

local function session_seen()
  local v
  if ENGINE7 then v = ScFlowintGet(5) else v = fi_session:value() end
  return v ~= nil and v > 0
end

local function set_skip()
  if ENGINE7 then ScFlowintSet(6, 1) else fi_skip:set(1) end
end

-- The scan count's signature consumes it (sets it back to 0).
local function set_scan()
  if ENGINE7 then ScFlowintSet(3, 1) else fi_scan:set(1) end
end

-- Counts this flow's connection attempts; true for the first.
local function first_attempt()
  if ENGINE7 then return ScFlowintIncr(4) == 1 end
  return fi_syn:incr() == 1
end

local KIND_NAME = { "control", "data" }
local function set_facts(flags, kind, port_match)
  local f = string.format("0x%04x", flags)
  local k = KIND_NAME[kind]
  local m = tostring(port_match)
  if ENGINE7 then
    ScFlowvarSet(0, f, #f); ScFlowvarSet(1, k, #k); ScFlowvarSet(2, m, #m)
  else
    fv_flags:set(f, #f); fv_kind:set(k, #k); fv_port:set(m, #m)
  end
end

-- payload, IPv4 or not, source and destination address and port
local function packet_info(args)
  if ENGINE7 then
    local ipver, sip, dip, _, sp, dp = SCPacketTuple()
    return SCPacketPayload(), ipver == 4, sip, dip, sp, dp
  end
  local pk = packet.get()
  local ipver, sip, dip, _, sp, dp = pk:tuple()
  return pk:payload(), ipver == 4, sip, dip, sp, dp
end

local function packet_seconds()
  if ENGINE7 then return (SCPacketTimestamp()) end
  return (packet.get():timestamp())
end

local function flow_id()
  if ENGINE7 then return SCFlowId() end
  return flow.get():id()
end

local function own_sid()
  if ENGINE7 then return (SCRuleIds()) end
  return rule.get_rule():sid()
end

-- Per Lua state ---------------------------------------------------------------
local mode            -- this state's entry of MODES, found on the first call
local udp_state = {}  -- reused for every datagram
local streams = {}    -- TCP direction (flow id) -> frame in flight
local spare = {}      -- frame state for the next TCP frame; kept only if left in flight
local nstreams = 0
local MAX_STREAMS = 512

-- A Conficker UDP exchange starts with a message. A flow whose first two
-- datagrams seen here were not messages (and that has carried none) is not
-- one: the decoder rules skip it. Flows with one bad datagram are remembered
-- in a table of bounded size, emptied when full.
local failed_once, nfailed = {}, 0
local UDP_FLOWS = 4096
local function udp_failed(fid)
  if failed_once[fid] then
    if not session_seen() then set_skip() end
    return
  end
  if nfailed >= UDP_FLOWS then failed_once = {}; nfailed = 0 end
  failed_once[fid] = true
  nfailed = nfailed + 1
end

-- One TCP segment: finish the frame in flight, then the frames it starts.
-- A stream entry is a frame in flight, or (flen < 0) the first byte of a
-- length prefix that the segment boundary cut.
local function tcp_segment(p, fid)
  local n, i = #p, 1
  local control, data, flags, kind, failed = 0, 0, 0, 0, false
  local s = streams[fid]
  if s ~= nil then
    streams[fid] = nil
    nstreams = nstreams - 1
  end
  while i <= n do
    if s == nil or s.flen < 0 then
      -- a frame starts here with its length prefix
      local flen
      if s ~= nil then
        flen = -s.flen - 1 + byte(p, i) * 256
        i = i + 1
      elseif i == n then
        s = { flen = -byte(p, i) - 1 }
        i = i + 1
        break
      else
        local a, b = byte(p, i, i + 1)
        flen = a + b * 256
        i = i + TCP_LENGTH_SIZE
      end
      if flen < MIN_MESSAGE then s = nil; failed = true; break end
      s = s or spare
      reset(s, flen)
    end
    local verdict
    i, verdict = feed(s, p, i, n)
    if verdict == false then s = nil; failed = true; break end
    if verdict == nil then break end
    if verdict == 2 then data = data + 1 else control = control + 1 end
    flags, kind = s.flags, verdict
    s = nil
  end
  if s ~= nil then
    if s == spare then spare = {} end
    if nstreams >= MAX_STREAMS then streams = {}; nstreams = 0 end
    streams[fid] = s
    nstreams = nstreams + 1
  end
  return control, data, flags, kind, failed
end

function match(args)
  clear_counts()
  if mode == nil then mode = MODES[own_sid()] or MODES[9310100] end
  local p, ipv4, sip, dip, sp, dp = packet_info(args)
  local lip, lport = dip, dp
  if not mode.listener_is_dst then lip, lport = sip, sp end
  if blacklisted(lport) then return 0 end
  if mode.syn then
    -- a connection attempt on one of the destination's computed ports, once per connection
    if ipv4 and computed_port(dip, dp, true, packet_seconds()) and first_attempt() then
      set_scan()
    end
    return 0
  end
  if p == nil then return 0 end
  local control, data, flags, kind, failed = 0, 0, 0, 0, false
  if mode.tcp then
    control, data, flags, kind, failed = tcp_segment(p, flow_id())
    -- Suricata tracks a TCP session from its handshake, so the first bytes of each
    -- direction start a frame, and a Conficker session's frames are all messages:
    -- a session that has not carried a valid message by its first bad frame is not
    -- one, and the decoder rules leave the rest of it alone.
    if failed and kind == 0 and not session_seen() then set_skip() end
  elseif #p >= MIN_MESSAGE then
    reset(udp_state, #p)
    local _, verdict = feed(udp_state, p, 1, #p)
    if verdict then
      flags, kind = udp_state.flags, verdict
      if verdict == 2 then data = 1 else control = 1 end
    else
      udp_failed(flow_id())
    end
  end
  if kind > 0 then
    local port_match = ipv4 and computed_port(lip, lport, mode.tcp, packet_seconds())
    set_counts(control, data)
    set_facts(flags, kind, port_match)
    set_session()
    -- a message sent to one of the destination's computed UDP ports: a probe
    if port_match and mode.attempts then set_scan() end
  end
  return 0
end
