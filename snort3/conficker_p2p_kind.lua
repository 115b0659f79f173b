-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
--
-- Conficker C P2P message kind for Snort 3 (LuaJIT): the IPS option conficker_p2p_kind. The
-- UDP rules of Detected and Data_Transfer name it after conficker_p2p:kind='any', the
-- option of the Protection rule: the three rules then share that node of Snort's
-- detection tree, so a datagram is decoded and verified once, and this option, with
-- conficker_p2p_kind:kind='control' or 'data', only deciphers the message's flags
-- to tell which kind it is (a datagram holds one message).
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

require("snort_plugin")
local ffi = ffi
local get_buffer = ffi.C.get_buffer

plugin = { type = "ips_option", name = "conficker_p2p_kind", version = 1 }

local HEAD = KEY_SIZE + FLAGS_SIZE
local state = {}
local want_data

function init()
  local kind = args and args.kind
  if kind ~= "control" and kind ~= "data" then
    error("conficker_p2p_kind: expected kind='control' or 'data', got " .. tostring(kind))
  end
  want_data = kind == "data"
  return true
end

function eval()
  local b = get_buffer()
  if b.len < HEAD then return false end
  local p = ffi.string(b.data, HEAD)
  init_cipher(state)
  key(state, p, 1, KEY_SIZE, 0)
  local flags = plain(state, p, 1 + KEY_SIZE, FLAGS_SIZE, KEY_SIZE, false)
  return has_flag(flags, DATA_FLAG) == want_data
end
