-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
--
-- Conficker C P2P decoder for Suricata 7.0 (LuaJIT): this file serves only the decoder
-- rules that require this engine; the rules file's other decoder rules call the
-- script of the other engine.
-- Called by the pack's decoder rules, once per candidate packet; it never
-- matches. It leaves its verdict for the signatures in per-packet flowints:
--   cfp2p_control  number of valid control messages in this packet
--   cfp2p_data     number of valid data-transfer messages in this packet
--   cfp2p_messages  number of valid messages of either kind
--   cfp2p_scan     1 for an attempt on one of the destination's computed ports
--                   (a UDP message, or a connection's first SYN); the scan
--                   signature sets it back to 0
-- and the last valid message's facts in the flowvars cfp2p_flags, cfp2p_kind,
-- cfp2p_port_match (whether the listener's port is one the port generator gives
-- it), cfp2p_peer (the peer block, a.b.c.d:port), cfp2p_data_len, cfp2p_data_flags
-- and cfp2p_data_head (the data block's length, flags and first 16 bytes as hex);
-- "-" where the message has no such block. Per flow: cfp2p_syn counts a connection's SYNs, cfp2p_session
-- is set once the flow carried a valid message, cfp2p_skip once bad frames or
-- datagrams before any message showed it is not Conficker (the decoder rules then
-- skip it), cfp2p_seq_to_server and cfp2p_seq_to_client hold the sequence
-- number each direction's data starts at (from the SYN and the SYN-ACK).

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

-- This engine's decoder rules (sid -> transport, listener side, whether its packets
-- are attempts on the destination, whether they are the handshake, the flowint that
-- holds its direction's first sequence number), so that a Lua state knows which rule
-- it serves without asking per packet.
local MODES = {
  [9310100] = { tcp = false, listener_is_dst = true, attempts = true, syn = false, isn = SEQ_TO_SERVER },
  [9310101] = { tcp = false, listener_is_dst = false, attempts = false, syn = false, isn = SEQ_TO_CLIENT },
  [9310102] = { tcp = true, listener_is_dst = true, attempts = false, syn = false, isn = SEQ_TO_SERVER },
  [9310103] = { tcp = true, listener_is_dst = false, attempts = false, syn = false, isn = SEQ_TO_CLIENT },
  [9310104] = { tcp = true, listener_is_dst = true, attempts = true, syn = true, isn = SEQ_TO_SERVER },
  [9310105] = { tcp = true, listener_is_dst = false, attempts = false, syn = true, isn = SEQ_TO_CLIENT },
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

-- One step of the port generator's state: v = MULTIPLIER * v + 1 (v a u32), from
-- 16-bit halves so that every intermediate value stays exact in a double. Returns
-- the low and the high 32 bits.
local function lcg(v)
  local vl = v % 65536
  local lo = vl * MULTIPLIER + 1
  local hi = (v - vl) / 65536 * MULTIPLIER
  local hl = hi % 65536
  local t = hl * 65536 + lo
  local w = t % 4294967296
  return w, (hi - hl) / 65536 + (t - w) / 4294967296
end

-- Ten steps of the port generator from state v: step i's high bits, shifted right by i,
-- XORed into a (even i) or b (odd i). Returns a, b and the state after them.
local function port_round(a, b, v)
  for i = 0, 9 do
    local hi
    v, hi = lcg(v)
    local x = band(shr(hi, i), 0xFFFF)
    if i % 2 == 0 then a = bxor32(a, x) else b = bxor32(b, x) end
  end
  return a, b, v
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

-- The port generator (PROTOCOL.md 1) ------------------------------------------
-- One pair of ports from the generator state v (a u32). Returns the pair and the
-- state after it.
local function port_pair(v)
  local a, b = 0, 0
  repeat
    a, b, v = port_round(a, b, v)
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
    e[5], e[6] = port_pair(bxor32(e[3], week))
    e[4] = week
  end
  return e
end

-- Is `port` one of the computed ports of address `ip` for the transport, in the
-- epoch week of time `sec` (or the neighbouring one near a rollover)?
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
  local c, d = port_pair(bxor32(e[3], other))
  if tcp then return port == c end
  return port == d
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

-- Raw packets -----------------------------------------------------------------
-- Where the transport header of raw packet `pk` starts, where the IP payload ends (first
-- and last index) and the IP protocol; nil when the headers are not Ethernet (VLAN-tagged
-- or not), Linux cooked or raw IP around IPv4 or IPv6 (without extension headers). The IP
-- length says where the payload ends (Ethernet pads short frames); a length of 0 (a
-- capture taken before segmentation offload) means the end of the packet.
local function l4_of(pk)
  local n = #pk
  if n < 28 then return nil end
  local ip
  local et = byte(pk, 13) * 256 + byte(pk, 14)
  if et == 0x8100 or et == 0x88A8 then
    et = byte(pk, 17) * 256 + byte(pk, 18); ip = 19
    if et == 0x8100 then et = byte(pk, 21) * 256 + byte(pk, 22); ip = 23 end
  elseif et == 0x0800 or et == 0x86DD then
    ip = 15
  else
    et = byte(pk, 15) * 256 + byte(pk, 16); ip = 17  -- Linux cooked capture
    if et ~= 0x0800 and et ~= 0x86DD then
      local v = byte(pk, 1)
      if v >= 0x45 and v <= 0x4F then et, ip = 0x0800, 1 elseif v >= 0x60 and v <= 0x6F then et, ip = 0x86DD, 1 else return nil end
    end
  end
  local l4, last, proto
  if et == 0x0800 then
    local v = byte(pk, ip)
    if v < 0x45 or v > 0x4F then return nil end
    l4, proto = ip + (v - 0x40) * 4, byte(pk, ip + 9)
    last = ip + byte(pk, ip + 2) * 256 + byte(pk, ip + 3) - 1
  else
    l4, proto = ip + 40, byte(pk, ip + 6)
    last = l4 + byte(pk, ip + 4) * 256 + byte(pk, ip + 5) - 1
  end
  if last < l4 or last > n then last = n end
  if l4 + 7 > last then return nil end
  return l4, last, proto
end

-- The TCP segment whose header starts at index `tcp` of raw packet `pk` (l4_of's
-- answer): the packet, its sequence number and its payload's first and last index; nil
-- when it is no TCP segment or its header does not fit.
local function tcp_at(pk, tcp, last, proto)
  if tcp == nil or proto ~= 6 or tcp + 19 > last then return nil end
  local first = tcp + shr(byte(pk, tcp + 12), 4) * 4
  if first - tcp < 20 or first > last + 1 then return nil end
  local a, b, c, d = byte(pk, tcp + 4, tcp + 7)
  return pk, ((a * 256 + b) * 256 + c) * 256 + d, first, last
end

-- Engine adapter: Suricata 7 ----------------------------------------------------
-- Flowints and flowvars are addressed by their index in the lists init() returns.
-- The script asks for the `packet` buffer: Suricata then calls it for SYNs too (it
-- skips a `payload` script on a packet without payload) and hands it the raw packet,
-- whose TCP header holds the sequence number.

function init(args)
  local needs = {}
  needs["packet"] = tostring(true)
  needs["flowint"] = FLOWINTS
  needs["flowvar"] = FLOWVARS
  return needs
end

-- This call's raw packet, where its transport header starts and its payload ends: the
-- ports and the payload are read there, without the SCPacketTuple() (which formats both
-- addresses) and SCPacketPayload() (a second copy) of every call.
local raw, l4, last, proto

local function packet_of(args)
  raw, l4 = args["packet"], nil
  if raw ~= nil then l4, last, proto = l4_of(raw) end
  return args
end

-- A TCP segment: the raw packet, the sequence number and the payload's first and last
-- index; nil when the headers could not be read.
local function tcp_segment(_)
  if raw == nil then return nil end
  return tcp_at(raw, l4, last, proto)
end
local function packet_seconds(_) return (SCPacketTimestamp()) end
local function flow_id(_) return SCFlowId() end
local function own_sid() return (SCRuleIds()) end

local function listener_port(_, dst)
  if l4 ~= nil then
    local k = l4
    if dst then k = l4 + 2 end
    local a, b = byte(raw, k, k + 1)
    return a * 256 + b
  end
  local _, _, _, _, sp, dp = SCPacketTuple()
  if dst then return dp end
  return sp
end

-- A UDP payload: the string it is in, its first and last index.
local function udp_payload(_)
  if l4 ~= nil and proto == 17 then return raw, l4 + 8, last end
  local p = SCPacketPayload()
  if p == nil then return nil end
  return p, 1, #p
end

-- The payload as Suricata gives it (segments whose headers could not be read).
local function payload(_) return SCPacketPayload() end

-- IPv4 or not, source and destination address and port
local function addresses(_)
  local ipver, sip, dip, _, sp, dp = SCPacketTuple()
  return ipver == 4, sip, dip, sp, dp
end

local function fi_get(k) return ScFlowintGet(k - 1) end
local function fi_set(k, v) ScFlowintSet(k - 1, v) end
local function fi_incr(k) return ScFlowintIncr(k - 1) end
local function fv_set(k, v) ScFlowvarSet(k - 1, v, #v) end

-- The decoder rule this Lua state serves (its entry of MODES), found on the first call.
local mode
local function mode_of(_)
  if mode == nil then mode = MODES[own_sid()] or MODES[9310100] end
  return mode
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

-- What a valid message carries, for the analyst: its peer block as a.b.c.d:port, and its
-- data block's flags, length and first DATA_HEAD bytes as hex ("-" for a block it does not
-- have). Deciphered again from the key at h[i ..], the message as it came: only the last
-- valid message of a call gets here, so other traffic never pays for it.
local fstate, hex = {}, {}
local function blocks_of(h, i, flags)
  init_cipher(fstate)
  key(fstate, h, i, KEY_SIZE, 0)
  plain(fstate, h, i + KEY_SIZE, FLAGS_SIZE, KEY_SIZE, false)
  local at, peer, dflags, dlen, dhead = i + KEY_SIZE + FLAGS_SIZE, "-", "-", "-", "-"
  for b = 1, DATA_BLOCK do
    if has_flag(flags, BLOCK_FLAG[b]) then
      local name = BLOCK_NAME[b]
      if name == "peer" then
        local a, c, d, e = plain(fstate, h, at, 1, 0, false), plain(fstate, h, at + 1, 1, 0, false),
          plain(fstate, h, at + 2, 1, 0, false), plain(fstate, h, at + 3, 1, 0, false)
        peer = string.format("%d.%d.%d.%d:%d", a, c, d, e, plain(fstate, h, at + 4, 2, 0, false))
      elseif name == "data" then
        -- u8 data_flags, the u16 length at BLOCK_LENGTH_AT, then the data
        dflags = string.format("0x%02x", plain(fstate, h, at, 1, 0, false))
        local n = plain(fstate, h, at + BLOCK_LENGTH_AT[b], 2, 0, false)
        dlen = tostring(n)
        if n > DATA_HEAD then n = DATA_HEAD end
        at = at + BLOCK_SIZE[b]
        for k = 1, n do hex[k] = string.format("%02x", plain(fstate, h, at + k - 1, 1, 0, false)) end
        dhead = table.concat(hex, "", 1, n)
      else
        for k = 0, BLOCK_SIZE[b] - 1 do plain(fstate, h, at + k, 1, 0, false) end
      end
      at = at + BLOCK_SIZE[b]
    end
  end
  return peer, dflags, dlen, dhead
end

local KIND_NAME = { "control", "data" }
local function set_facts(flags, kind, port_match)
  fv_set(1, string.format("0x%04x", flags))
  fv_set(2, KIND_NAME[kind])
  fv_set(3, tostring(port_match))
  local peer, dflags, dlen, dhead = blocks_of(last_head, last_at, flags)
  fv_set(4, peer); fv_set(5, dlen); fv_set(6, dflags); fv_set(7, dhead)
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
    -- the handshake: where this direction's data will start, and for a SYN on one
    -- of the destination's computed ports, an attempt (once per connection)
    local _, seq = tcp_segment(pk)
    if seq ~= nil then fi_set(mode.isn, (seq + 1) % 4294967296) end
    if mode.attempts then
      local ipv4, _, dip, _, dp = addresses(pk)
      if ipv4 and computed_port(dip, dp, true, packet_seconds(pk)) and fi_incr(SYN) == 1 then
        fi_set(SCAN, 1)
      end
    end
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
    -- Suricata 7 tracks a TCP session from its handshake, so each direction's first
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
    local ipv4, sip, dip = addresses(pk)
    local lip = dip
    if not mode.listener_is_dst then lip = sip end
    local port_match = ipv4 and computed_port(lip, lport, mode.tcp, packet_seconds(pk))
    set_facts(last_flags, last_kind, port_match)
    -- a message sent to one of the destination's computed UDP ports: a probe
    if port_match and mode.attempts then fi_set(SCAN, 1) end
  end
end

-- Suricata calls match() once per packet of the decoder rule; it never matches: the
-- signatures read the verdict from the flowints.
function match(args)
  decode(packet_of(args))
  return 0
end
