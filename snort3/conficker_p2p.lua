-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
--
-- Conficker C P2P decoder for Snort 3 (LuaJIT): the IPS option conficker_p2p. A rule names it
-- with the count it wants: conficker_p2p:kind='control' (control messages), 'data'
-- (data-transfer messages) or 'any'; the option matches a packet that carries at least
-- one such valid message. Snort gives each distinct option (each kind) a Lua state of
-- its own per packet thread: the UDP rules all name kind 'any' first, so a datagram is
-- decoded once (their shared node of the detection tree) and conficker_p2p_kind tells
-- the kinds apart; the TCP rules name their own kind (a segment is decoded once per kind).
-- The rules hand it only packets on the listener's side of a port Conficker may listen
-- on. Per flow, in tables of this state rather than flowints: whether the flow carried
-- a valid message, whether it showed it is not Conficker (the option then leaves it
-- alone), and the sequence number each TCP direction's data starts at (from the SYN and
-- the SYN-ACK).
-- Protocol layout (spec: protocol) -----------------------------------------
local KEY_SIZE = 8
local FLAGS_SIZE = 2
local CHECKSUM_SIZE = 4
local TCP_LENGTH_SIZE = 2
local MIN_MESSAGE = 14
local DATA_FLAG = 64
-- Flags a message must carry (render option strict_flags; 0: none, as the format says).
local REQUIRE_UDP = 0
local REQUIRE_TCP = 0
-- Optional blocks in wire order: flag bit, size, offset of a u16 length of the
-- bytes that follow the block (or -1).
local BLOCK_NAME = { "peer", "unknown0", "unknown1", "data", "sysinfo" }
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
local POW256 = { [0] = 1, 256, 65536, 16777216 }

-- Port generator (PROTOCOL.md 1).
local WEEK_OFFSET = 345600
local WEEK_SECONDS = 604800
local MULTIPLIER = 22695477

-- Largest number of bytes deciphered in one call, and what a frame's set-up counts
-- as: keeps one call well inside Suricata 8's Lua instruction limit.
local BUDGET = 20000
local FRAME_COST = 96

-- Port generator: the neighbouring week is accepted this close to a rollover (clock drift).
local WEEK_SLOP = 900
-- Addresses whose computed ports a Lua state keeps.
local PORT_CACHE = 256

-- TCP: directions a Lua state follows, and the bytes (in pieces) one holds ahead of a gap.
local MAX_STREAMS = 512
local REORDER_BYTES = 8192
local REORDER_SEGMENTS = 8
-- ... and all of them together: Suricata 8 caps a Lua state's memory (500,000 bytes by
-- default), and about 215 KB of it can go to MAX_STREAMS directions.
local REORDER_TOTAL = 65536

-- Flowints and flowvars, by position (the adapter's fi_* and fv_* take it).
local FLOWINTS = {
  "cfp2p_control", "cfp2p_data", "cfp2p_messages", "cfp2p_scan", "cfp2p_syn",
  "cfp2p_session", "cfp2p_skip", "cfp2p_seq_to_server", "cfp2p_seq_to_client"
}
local CONTROL, DATA, ANY, SCAN, SYN, SESSION, SKIP, SEQ_TO_SERVER, SEQ_TO_CLIENT = 1, 2, 3, 4, 5, 6, 7, 8, 9
local FLOWVARS = {
  "cfp2p_flags", "cfp2p_kind", "cfp2p_port_match",
  "cfp2p_peer", "cfp2p_data_len", "cfp2p_data_flags", "cfp2p_data_head"
}

-- What a packet is, by transport and role (transport, listener side, whether it
-- counts as an attempt where the packet's time is known, whether it is the handshake, the
-- flowint that holds its direction's first sequence number): the option's Lua state serves
-- every rule that names its kind, so it looks this up per packet.
local MODES = {
  ["udp/to_server"] = { tcp = false, listener_is_dst = true, attempts = true, syn = false, isn = SEQ_TO_SERVER },
  ["udp/to_client"] = { tcp = false, listener_is_dst = false, attempts = false, syn = false, isn = SEQ_TO_CLIENT },
  ["tcp/to_server"] = { tcp = true, listener_is_dst = true, attempts = false, syn = false, isn = SEQ_TO_SERVER },
  ["tcp/to_client"] = { tcp = true, listener_is_dst = false, attempts = false, syn = false, isn = SEQ_TO_CLIENT },
  ["tcp/syn"] = { tcp = true, listener_is_dst = true, attempts = true, syn = true, isn = SEQ_TO_SERVER },
  ["tcp/synack"] = { tcp = true, listener_is_dst = false, attempts = false, syn = true, isn = SEQ_TO_CLIENT },
}

local floor = math.floor

-- Primitives: LuaJIT (Suricata 7) ---------------------------------------------
-- Lua 5.1 numbers and the bit library (32-bit, signed results); the 64-bit cipher
-- key is two 32-bit halves. The JIT compiles the byte loops.
local bit = require("bit")
local band, bor, bxor, lshift, rshift, rol, tobit = bit.band, bit.bor, bit.bxor, bit.lshift, bit.rshift, bit.rol, bit.tobit
local byte, sub = string.byte, string.sub

local function shr(a, n) return rshift(a, n) end
local function bxor32(a, b) return bxor(a, b) % 4294967296 end
local function has_flag(flags, f) return band(flags, f) ~= 0 end

local function blacklisted(port)
  return band(rshift(BLACKLIST[rshift(port, 10) + 1], band(rshift(port, 5), 31)), 1) == 1
end


-- Cipher and checksum state of a frame: klo, khi, the key as the cipher has turned it
-- so far; g, the checksum of the bytes hashed so far started from 0 (the real start
-- value, the number of bytes hashed, is folded in by digest(): the hash is linear).
local function init_cipher(s)
  s.klo, s.khi, s.g = 0, 0, 0
end

-- Key bytes p[i .. i+n-1], at frame offset pos (< 8): cleartext, hashed.
local function key(s, p, i, n, pos)
  local klo, khi, g = s.klo, s.khi, s.g
  for k = 0, n - 1 do
    local c, at = byte(p, i + k), pos + k
    if at < 4 then klo = bor(klo, lshift(c, at * 8)) else khi = bor(khi, lshift(c, at * 8 - 32)) end
    g = rol(bxor(g, c), 1)
  end
  s.klo, s.khi, s.g = klo, khi, g
end

-- One keystream step: K = rotl64(K, 1); the byte is K's low byte; K = K + that byte,
-- the add carrying into the high half when the low half wraps (as unsigned). Returns the
-- new halves and the byte (the JIT inlines it into the loops below).
local function step(klo, khi)
  local t = rshift(khi, 31)
  khi = bor(lshift(khi, 1), rshift(klo, 31))
  klo = bor(lshift(klo, 1), t)
  local ks = band(klo, 255)
  local nlo = klo + ks
  if klo < 0 and nlo >= 0 then khi = tobit(khi + 1) end
  return tobit(nlo), khi, ks
end

-- Decipher n (<= 4) bytes; hash them if `hashed`. Returns their little-endian value.
local function plain(s, p, i, n, pos, hashed)
  local klo, khi, g, v = s.klo, s.khi, s.g, 0
  for k = 0, n - 1 do
    local ks
    klo, khi, ks = step(klo, khi)
    local b = bxor(byte(p, i + k), ks)
    if hashed then g = rol(bxor(g, b), 1) end
    v = v + b * POW256[k]
  end
  s.klo, s.khi, s.g = klo, khi, g
  return v
end

-- Decipher and hash n bytes, keeping nothing but the state: the hot loop.
local function bulk(s, p, i, n, pos)
  local klo, khi, g = s.klo, s.khi, s.g
  for k = i, i + n - 1 do
    local ks
    klo, khi, ks = step(klo, khi)
    g = rol(bxor(g, bxor(byte(p, k), ks)), 1)
  end
  s.klo, s.khi, s.g = klo, khi, g
end

-- The checksum of the first N bytes of the frame (non-negative, as the csum read).
local function digest(s, N)
  return bxor(rol(N, N % 32), s.g) % 4294967296
end


-- The message machine ---------------------------------------------------------
-- A frame is one message: the payload of a UDP datagram, or the bytes that a TCP
-- length prefix announces. Its state `s` (which for TCP is also the direction's):
--   pos    bytes of the frame consumed so far
--   flen   frame length
--   flags  deciphered flags, once pos > 9
--   fixed  end of the fixed part (key, flags, blocks), once flags are known
--   lenat  frame offset of the u16 length of the data block, or -1
--   hlen   bytes hashed (end of the checksummed part), 0 while unknown
--   dlen   data length as read so far
--   csum   checksum as deciphered so far
-- and the cipher and checksum state of the primitives (init_cipher).
-- A frame is read in regions, each the cheapest way: the key in clear, the bytes whose
-- value matters (flags, data length, checksum) one at a time, everything else hashed
-- in bulk, and the noise after the checksum skipped.

local function reset(s, flen)
  s.pos, s.flen, s.flags, s.fixed, s.lenat, s.hlen, s.dlen, s.csum = 0, flen, 0, 0, -1, 0, 0, 0
  s.head = ""
  init_cipher(s)
end

-- A frame's first bytes as they came (head), kept while it is fed piece by piece: what the
-- facts of a valid message are read from (its blocks up to the data block, and the
-- first DATA_HEAD bytes of the data).
local DATA_HEAD = 16
local HEAD_MAX, DATA_BLOCK = KEY_SIZE + FLAGS_SIZE + DATA_HEAD, NBLOCKS
for b = NBLOCKS, 1, -1 do
  if BLOCK_FLAG[b] == DATA_FLAG then DATA_BLOCK = b end
end
for b = 1, DATA_BLOCK do HEAD_MAX = HEAD_MAX + BLOCK_SIZE[b] end

-- Layout from the flags: end of the fixed part and where the data length is (frame
-- offsets, -1: no data block), computed once per combination of block flags.
local BLOCK_MASK = 0
for i = 1, NBLOCKS do BLOCK_MASK = BLOCK_MASK + BLOCK_FLAG[i] end
local FIXED, LENAT = {}, {}
local function layout(flags)
  local bits = band(flags, BLOCK_MASK)
  if FIXED[bits] == nil then
    local off, lenat = KEY_SIZE + FLAGS_SIZE, -1
    for i = 1, NBLOCKS do
      if has_flag(bits, BLOCK_FLAG[i]) then
        if BLOCK_LENGTH_AT[i] >= 0 then lenat = off + BLOCK_LENGTH_AT[i] end
        off = off + BLOCK_SIZE[i]
      end
    end
    FIXED[bits], LENAT[bits] = off, lenat
  end
  return FIXED[bits], LENAT[bits]
end

-- Once the flags are known: the frame's layout, or nil when the flags or the frame
-- length rule a message out (missing required flags, no room for the fixed part).
local function header(flags, flen, require)
  if band(flags, require) ~= require then return nil end
  local fixed, lenat = layout(flags)
  if fixed + CHECKSUM_SIZE > flen then return nil end
  return fixed, lenat
end

-- The verdict on a frame whose checksum is read: false, or its kind (1 control, 2 data).
local function verdict_of(s, hlen, csum)
  if csum ~= digest(s, hlen) then return false end
  if has_flag(s.flags, DATA_FLAG) then return 2 end
  return 1
end

-- Bytes deciphered by this call (bulk regions, plus FRAME_COST per frame): bounded by
-- BUDGET, so that one call stays well inside Suricata 8's instruction limit.
local work = 0

-- A frame that lies whole in p, from index i on (flen bytes): the common case (every
-- datagram, most TCP messages), read without the region bookkeeping of feed(). The
-- same verdicts as feed() at the frame's end; only the cipher state is kept in s.
local function whole(s, p, i, flen, require)
  init_cipher(s)
  key(s, p, i, KEY_SIZE, 0)
  local at = KEY_SIZE + FLAGS_SIZE
  s.flags = plain(s, p, i + KEY_SIZE, FLAGS_SIZE, KEY_SIZE, true)
  local fixed, lenat = header(s.flags, flen, require)
  if fixed == nil then return false end
  local hlen = fixed
  if lenat >= 0 then
    if lenat > at then bulk(s, p, i + at, lenat - at, at) end
    hlen = fixed + plain(s, p, i + lenat, 2, lenat, true)
    if hlen + CHECKSUM_SIZE > flen then return false end
    at = lenat + 2
  end
  work = work + hlen
  if work > BUDGET then return 0 end
  if hlen > at then bulk(s, p, i + at, hlen - at, at) end
  return verdict_of(s, hlen, plain(s, p, i + hlen, CHECKSUM_SIZE, hlen, false))
end

-- Feed bytes p[i .. j] of the current frame (TCP: frames split across segments).
-- Returns the index after the last byte consumed and a verdict: nil (needs more bytes), false (not a message), 0 (over this
-- call's budget: not verified) or the message kind (1 control, 2 data).
local function feed(s, p, i, j)
  local flen = s.flen
  if j > i + flen - s.pos - 1 then j = i + flen - s.pos - 1 end
  if s.pos < HEAD_MAX then
    local e = i + HEAD_MAX - s.pos - 1
    if e > j then e = j end
    s.head = s.head .. sub(p, i, e)
  end
  while i <= j do
    local pos, left = s.pos, j - i + 1
    local n
    if pos < KEY_SIZE then
      n = KEY_SIZE - pos
      if n > left then n = left end
      key(s, p, i, n, pos)
    elseif pos < KEY_SIZE + FLAGS_SIZE then
      n = KEY_SIZE + FLAGS_SIZE - pos
      if n > left then n = left end
      s.flags = s.flags + plain(s, p, i, n, pos, true) * POW256[pos - KEY_SIZE]
      if pos + n == KEY_SIZE + FLAGS_SIZE then
        local fixed, lenat = header(s.flags, flen, REQUIRE_TCP)
        if fixed == nil then return i + n, false end
        s.fixed, s.lenat = fixed, lenat
        if lenat < 0 then s.hlen = fixed end
      end
    elseif s.hlen == 0 and pos < s.lenat then
      n = s.lenat - pos
      if n > left then n = left end
      bulk(s, p, i, n, pos)
    elseif s.hlen == 0 then
      -- the data block's u16 length
      n = s.lenat + 2 - pos
      if n > left then n = left end
      s.dlen = s.dlen + plain(s, p, i, n, pos, true) * POW256[pos - s.lenat]
      if pos + n == s.lenat + 2 then
        s.hlen = s.fixed + s.dlen
        if s.hlen + CHECKSUM_SIZE > flen then return i + n, false end
      end
    elseif pos < s.hlen then
      n = s.hlen - pos
      if n > left then n = left end
      work = work + n
      if work > BUDGET then return i, 0 end
      bulk(s, p, i, n, pos)
    elseif pos < s.hlen + CHECKSUM_SIZE then
      n = s.hlen + CHECKSUM_SIZE - pos
      if n > left then n = left end
      s.csum = s.csum + plain(s, p, i, n, pos, false) * POW256[pos - s.hlen]
    else
      -- noise: never deciphered
      n = left
    end
    s.pos = pos + n
    i = i + n
  end
  if s.pos < flen then return i, nil end
  return i, verdict_of(s, s.hlen, s.csum)
end

-- TCP directions, by sequence number -------------------------------------------
-- Each decoder rule's Lua state sees one direction of a flow, so a flow id names a
-- direction. Its state is a frame state (above) plus
--   nxt    sequence number of the next byte to feed
--   flen   nil between frames, < 0 after the first byte of a cut length prefix
--   hseq, hdat   pieces held ahead of a gap: sequence number and bytes, in order
--   hbytes bytes held
--   dead   the direction is given up (a bad frame, the reorder bound, the budget)
-- A byte is fed once, in sequence order: the first copy of a byte that arrives is
-- kept, whether it came first as a retransmission, an overlap or a resend.

local streams, nstreams = {}, 0
local held_total = 0  -- bytes held by all directions of this Lua state

-- Per call: messages found, the last one's flags and kind and where its bytes are (a
-- string and the index of its key), whether a frame fed in sequence was not a message.
local control, data, last_flags, last_kind, failed = 0, 0, 0, 0, false
local last_head, last_at

-- a - b as a signed distance on the 32-bit sequence space
local function seqdiff(a, b)
  local d = (a - b) % 4294967296
  if d >= 2147483648 then d = d - 4294967296 end
  return d
end

local function give_up(st)
  held_total = held_total - st.hbytes
  st.dead, st.hseq, st.hdat, st.hbytes = true, nil, nil, 0
end

-- The frames in p[i .. n]: true when all was consumed, false for a bad frame, 0 over
-- the budget.
local function frames(st, p, i, n)
  while i <= n do
    local verdict, head, at
    local flen = st.flen
    if flen == nil or flen < 0 then
      if flen ~= nil then
        flen = -flen - 1 + byte(p, i) * 256
        i = i + 1
      elseif i == n then
        st.flen = -byte(p, i) - 1
        return true
      else
        local a, b = byte(p, i, i + 1)
        flen = a + b * 256
        i = i + TCP_LENGTH_SIZE
      end
      if flen < MIN_MESSAGE then return false end
      work = work + FRAME_COST
      if work > BUDGET then return 0 end
      if i + flen - 1 <= n then
        verdict = whole(st, p, i, flen, REQUIRE_TCP)
        head, at = p, i
        i = i + flen
      else
        reset(st, flen)
      end
    end
    if verdict == nil then
      i, verdict = feed(st, p, i, n)
      if verdict == nil then return true end
      head, at = st.head, 1
    end
    if not verdict or verdict == 0 then return verdict end
    if verdict == 2 then data = data + 1 else control = control + 1 end
    last_flags, last_kind, last_head, last_at = st.flags, verdict, head, at
    st.flen = nil
  end
  return true
end

-- Feed the bytes p[i .. j], which come next in sequence. False when the direction ended.
local function advance(st, p, i, j)
  st.nxt = (st.nxt + j - i + 1) % 4294967296
  local ok = frames(st, p, i, j)
  if ok == true then return true end
  if ok == false then failed = true end
  give_up(st)
  return false
end

-- Hold the bytes p[i .. j] of a segment that starts `ahead` bytes past nxt, but those
-- already held; past the bound, give the direction up.
local function hold(st, p, i, j, ahead)
  local hs, hd = st.hseq or {}, st.hdat or {}
  local ns, nd, added = {}, {}, 0
  local cur, stop = ahead, ahead + j - i + 1
  local base = i - ahead  -- index in p of the byte `ahead` = 0
  for k = 1, #hs do
    local a = seqdiff(hs[k], st.nxt)
    if cur < stop and a > cur then
      local e = a
      if e > stop then e = stop end
      ns[#ns + 1] = (st.nxt + cur) % 4294967296
      nd[#nd + 1] = sub(p, base + cur, base + e - 1)
      added = added + e - cur
    end
    ns[#ns + 1], nd[#nd + 1] = hs[k], hd[k]
    local b = a + #hd[k]
    if b > cur then cur = b end
  end
  if cur < stop then
    ns[#ns + 1] = (st.nxt + cur) % 4294967296
    nd[#nd + 1] = sub(p, base + cur, j)
    added = added + stop - cur
  end
  if st.hbytes + added > REORDER_BYTES or #ns > REORDER_SEGMENTS
    or held_total + added > REORDER_TOTAL then
    give_up(st)
    return
  end
  st.hseq, st.hdat, st.hbytes = ns, nd, st.hbytes + added
  held_total = held_total + added
end

-- One TCP segment: its payload is p[i .. j], at sequence number seq. Only held pieces
-- are copied out of p.
local function segment(st, p, i, j, seq)
  if st.dead then return end
  local d = seqdiff(seq, st.nxt)
  if d < 0 then
    -- starts before nxt: a retransmission, or a resend with new bytes behind old ones
    if d + j - i + 1 <= 0 then return end
    i, d = i - d, 0
  end
  if d > 0 then
    hold(st, p, i, j, d)
    return
  end
  -- bytes that reach into a held piece: the held copy came first, so feed up to it
  -- and hand the rest back (trimmed again once the piece is fed)
  local hs, hd, at, last = st.hseq, st.hdat, st.nxt, j
  if hs ~= nil and #hs > 0 then
    local first = seqdiff(hs[1], at)
    if first < j - i + 1 then j = i + first - 1 end
  end
  if not advance(st, p, i, j) then return end
  -- pieces the segment brought within reach
  while hs ~= nil and #hs > 0 do
    local a = seqdiff(hs[1], st.nxt)
    if a > 0 then break end
    local q = table.remove(hd, 1)
    table.remove(hs, 1)
    st.hbytes = st.hbytes - #q
    held_total = held_total - #q
    if a + #q > 0 and not advance(st, q, 1 - (a < 0 and a or 0), #q) then return end
  end
  if last > j then segment(st, p, i, last, at) end
end

-- The direction of flow `fid`, created at its first segment (sequence number seq):
-- it starts at `isn` (the byte after the SYN's) when that is known and not ahead of
-- the segment, else at this segment.
local function stream_of(fid, seq, isn)
  local st = streams[fid]
  if st ~= nil then return st end
  if nstreams >= MAX_STREAMS then streams = {}; nstreams = 0; held_total = 0 end
  local start = seq
  if isn ~= nil then
    local d = seqdiff(seq, isn)
    if d >= 0 then start = isn end
  end
  st = { nxt = start, hbytes = 0, dead = false }
  streams[fid] = st
  nstreams = nstreams + 1
  return st
end


-- Engine adapter: Snort 3 -----------------------------------------------------
-- The option sees one buffer, the packet's payload (pkt_data), and nothing of the packet
-- around it. Snort decodes a packet in place, so the payload of a packet read off the
-- wire follows its IP and transport headers in the same buffer: the adapter reads them
-- there, walking back from the payload and checking every length it relies on (a packet
-- whose headers do not check out is not decoded).
-- The rules' headers carry the listener check, as Suricata's decoder rules do: a packet
-- to the server on an allowed port, or from the server on one (Snort's flow direction).
-- The option cannot see that direction; it takes as the listener's the side its mode
-- names, or the other side where that one's port is blacklisted (the rule let the packet
-- through on the other), so it decodes exactly what the rules hand it.
-- The flow state Suricata keeps in flowints is kept here in two tables of this Lua state,
-- by direction: whether the flow carried a valid message and whether it showed it is not
-- Conficker (the option then leaves it alone), written only then; where the direction's
-- TCP data starts (from the SYN and the SYN-ACK). The counts are the packet's own. A
-- flow's state is a number, not a table, and a string key is made only of what is read:
-- the direction's addresses and ports, one copy where they lie together.
require("snort_plugin")
local ffi = ffi
local get_buffer = ffi.C.get_buffer

-- By direction key (sender's address and port, receiver's): FLOW_SESSION and FLOW_SKIP
-- (under both of the flow's keys), and the sequence number the direction's TCP data
-- starts at. Each table holds at most FLOWS keys and is emptied when full.
local FLOWS = 8192
local FLOW_SESSION, FLOW_SKIP = 1, 2
local fbits, nbits, fisn, nisn = {}, 0, {}, 0

-- This packet: its transport header, payload and payload length, protocol, its
-- direction's key, its flow's bits and its counts.
local at_l4, at_data, at_len, proto, dkey, bits
local counts = { 0, 0, 0 }

-- The IP header in front of a transport header at t that, with its payload, is n bytes
-- long and of protocol want: the header and its length, or nil.
local function ip_before(t, n, want)
  for ihl = 20, 60, 4 do
    local h = t - ihl
    if h[0] == 0x40 + ihl / 4 and h[9] == want and h[2] * 256 + h[3] == ihl + n then
      return h, ihl
    end
  end
  local h = t - 40
  if shr(h[0], 4) == 6 and h[6] == want and h[4] * 256 + h[5] == n then return h, 40 end
  return nil
end

-- The headers in front of the n payload bytes at d: the IP header and its length, the
-- transport header and the protocol (UDP or TCP); nil when none check out.
local function headers(d, n)
  local u = d - 8
  if u[4] * 256 + u[5] == n + 8 then
    local h, ihl = ip_before(u, n + 8, 17)
    if h ~= nil then return h, ihl, u, 17 end
  end
  for thl = 20, 60, 4 do
    local t = d - thl
    if shr(t[12], 4) * 4 == thl then
      local h, ihl = ip_before(t, n + thl, 6)
      if h ~= nil then return h, ihl, t, 6 end
    end
  end
  return nil
end

-- The key of a direction: sender's address and port, receiver's address and port.
local function key_of(h, ihl, t, v6)
  if v6 then return ffi.string(h + 8, 36) end  -- addresses, then the ports: together
  if ihl == 20 then return ffi.string(h + 12, 12) end
  return ffi.string(h + 12, 8) .. ffi.string(t, 4)
end

-- The same key, read the other way (the reply's).
local function reverse(k)
  local a = (#k - 4) / 2
  return sub(k, a + 1, 2 * a) .. sub(k, 1, a) .. sub(k, -2) .. sub(k, -4, -3)
end

-- The packet behind buffer b; nil when its headers cannot be read, it carries nothing
-- to decode, or its flow showed it is not Conficker.
local function packet_of(b)
  local n = b.len
  local h, ihl, t, pr = headers(b.data, n)
  -- a TCP segment without payload matters only as a SYN or SYN-ACK
  if h == nil or (n == 0 and band(t[13], 0x02) == 0) then return nil end
  at_l4, at_data, at_len, proto = t, b.data, n, pr
  counts[1], counts[2], counts[3] = 0, 0, 0
  dkey = key_of(h, ihl, t, ihl == 40 and shr(h[0], 4) == 6)
  bits = fbits[dkey] or 0
  if band(bits, FLOW_SKIP) ~= 0 then return nil end
  return true
end

-- Flowints by position: the counts are the packet's; SESSION and SKIP the flow's; the
-- sequence numbers the packet's direction's (whichever of the two the mode names).
local FLOW_BIT = { [SESSION] = FLOW_SESSION, [SKIP] = FLOW_SKIP }
local function fi_get(k)
  if k <= ANY then return counts[k] end
  local fb = FLOW_BIT[k]
  if fb ~= nil then return band(bits, fb) ~= 0 and 1 or nil end
  if k == SEQ_TO_SERVER or k == SEQ_TO_CLIENT then return fisn[dkey] end
  return nil
end
local function fi_set(k, v)
  if k <= ANY then counts[k] = v; return end
  local fb = FLOW_BIT[k]
  if fb ~= nil then
    if v == 0 or band(bits, fb) ~= 0 then return end
    if nbits >= FLOWS then fbits, nbits = {}, 0 end
    bits = bor(bits, fb)
    fbits[dkey], fbits[reverse(dkey)] = bits, bits
    nbits = nbits + 2
  elseif k == SEQ_TO_SERVER or k == SEQ_TO_CLIENT then
    if nisn >= FLOWS then fisn, nisn = {}, 0 end
    fisn[dkey] = v
    nisn = nisn + 1
  end
end

-- What the packet is (its entry of MODES): transport and handshake. The direction only
-- names the listener's side (listener_port) and the sequence number (fi_*), so data
-- packets all take the to_server mode.
local MODE_SYN, MODE_SYNACK = MODES["tcp/syn"], MODES["tcp/synack"]
local MODE_TCP, MODE_UDP = MODES["tcp/to_server"], MODES["udp/to_server"]
local function mode_of(_)
  if proto == 17 then return MODE_UDP end
  local flags = at_l4[13]
  if band(flags, 0x02) ~= 0 then
    if band(flags, 0x10) == 0 then return MODE_SYN end
    return MODE_SYNACK
  end
  return MODE_TCP
end

-- A TCP segment: its payload, sequence number, and the payload's first and last index.
local function tcp_segment(_)
  local t = at_l4
  local seq = ((t[4] * 256 + t[5]) * 256 + t[6]) * 256 + t[7]
  return ffi.string(at_data, at_len), seq, 1, at_len
end
local function payload(_) return nil end

-- A UDP payload: the string it is in, its first and last index.
local function udp_payload(_)
  if proto ~= 17 then return nil end
  return ffi.string(at_data, at_len), 1, at_len
end

local function flow_id(_) return dkey end

-- The port on the listener's side: the side the mode names, unless its port is
-- blacklisted (the rule header let the packet through on the other side's).
local function listener_port(_, is_dst)
  local d, s = at_l4[2] * 256 + at_l4[3], at_l4[0] * 256 + at_l4[1]
  if not is_dst then d, s = s, d end
  if blacklisted(d) then return s end
  return d
end

-- The verdict -------------------------------------------------------------------

-- Zero the counts a previous packet of the flow left. Read first: writing them on
-- every packet would give every flow its own flowints (measured: 33% more memory on
-- a flood of one-datagram flows).
local function clear_counts()
  local any = fi_get(ANY)
  if any ~= nil and any > 0 then fi_set(CONTROL, 0); fi_set(DATA, 0); fi_set(ANY, 0) end
end

local function session_seen()
  local v = fi_get(SESSION)
  return v ~= nil and v > 0
end


-- Per Lua state ---------------------------------------------------------------
local udp_state = {}  -- reused for every datagram

-- A Conficker UDP exchange starts with a message. A flow whose first two
-- datagrams seen here were not messages (and that has carried none) is not
-- one: the decoder rules skip it. Flows with one bad datagram are remembered
-- in a table of bounded size, emptied when full.
local failed_once, nfailed = {}, 0
local UDP_FLOWS = 4096
local function udp_failed(fid)
  if failed_once[fid] then
    if not session_seen() then fi_set(SKIP, 1) end
    return
  end
  if nfailed >= UDP_FLOWS then failed_once = {}; nfailed = 0 end
  failed_once[fid] = true
  nfailed = nfailed + 1
end

-- Decode one packet `pk` (packet_of's answer) and leave the verdict in the flowints.
local function decode(pk)
  clear_counts()
  local mode = mode_of(pk)
  local lport = listener_port(pk, mode.listener_is_dst)
  if blacklisted(lport) then return end
  if mode.syn then
    -- the handshake: where this direction's data will start
    local _, seq = tcp_segment(pk)
    if seq ~= nil then fi_set(mode.isn, (seq + 1) % 4294967296) end
    return
  end
  control, data, last_flags, last_kind, failed, work = 0, 0, 0, 0, false, 0
  if mode.tcp then
    -- the payload is read in place in the raw packet, whose TCP header has the
    -- sequence number; without one, segments are taken in the order they arrive
    local p, seq, i, j = tcp_segment(pk)
    if p == nil then
      p = payload(pk)
      if p == nil then return end
      i, j = 1, #p
    end
    if j < i then return end
    local st = stream_of(flow_id(pk), seq or 0, seq and fi_get(mode.isn))
    segment(st, p, i, j, seq or st.nxt)
    -- Snort 3 tracks a TCP session from its handshake, so each direction's first
    -- bytes start a frame, and a Conficker session's frames are all messages: a
    -- session that has not carried a valid message by its first bad frame is not
    -- one, and the rest of it is left alone.
    if failed and last_kind == 0 and not session_seen() then fi_set(SKIP, 1) end
  else
    local p, i, j = udp_payload(pk)
    if p == nil or j - i + 1 < MIN_MESSAGE then return end
    work = FRAME_COST
    local verdict = whole(udp_state, p, i, j - i + 1, REQUIRE_UDP)
    if verdict == 1 or verdict == 2 then
      last_flags, last_kind, last_head, last_at = udp_state.flags, verdict, p, i
      if verdict == 2 then data = 1 else control = 1 end
    else
      udp_failed(flow_id(pk))
    end
  end
  if last_kind > 0 then
    fi_set(CONTROL, control); fi_set(DATA, data); fi_set(ANY, control + data)
    fi_set(SESSION, 1)
  end
end

-- The IPS option: Snort calls eval() for each packet of a rule that names it.
plugin = { type = "ips_option", name = "conficker_p2p", version = 1 }

local KINDS = { control = CONTROL, data = DATA, any = ANY }
local want  -- the count this option's rules ask for (its kind)

function init()
  want = KINDS[args and args.kind]
  if want == nil then
    error("conficker_p2p: expected kind='control', 'data' or 'any', got " .. tostring(args and args.kind))
  end
  return true
end

function eval()
  local pk = packet_of(get_buffer())
  if pk == nil then return false end
  decode(pk)
  return counts[want] > 0
end
