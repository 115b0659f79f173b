"""Traffic ingredients of the session kinds: a pool of random bytes to slice payloads
from, hosts inside and outside the monitored network, ports, DNS and TLS payloads."""

from __future__ import annotations

import random
import struct

from generator import codec as protocol


class Pool:
    """Random bytes to slice payloads from: fast, and random enough for a decoder."""

    def __init__(self, rng: random.Random, size: int = 1 << 22) -> None:
        self.rng = rng
        self.data = rng.randbytes(size)

    def take(self, n: int) -> bytes:
        off = self.rng.randrange(len(self.data) - n)
        return self.data[off : off + n]


def internal(rng: random.Random) -> bytes:
    """A host in the monitored network, 10.1.0.0/16."""
    return bytes((10, 1, rng.randrange(0, 200), rng.randrange(1, 255)))


def external(rng: random.Random) -> bytes:
    """A host outside, in the benchmarking range 198.18.0.0/15 (RFC 2544)."""
    return bytes((198, 18 + rng.randrange(2), rng.randrange(256), rng.randrange(1, 255)))


def ephemeral(rng: random.Random) -> int:
    return rng.randrange(49152, 65536)


def allowed_port(rng: random.Random, low: int = 2048) -> int:
    """A random port >= low that the worm may listen on (not blacklisted)."""
    while True:
        port = rng.randrange(low, 65536)
        if not protocol.is_blacklisted(port):
            return port


def lognormal_int(rng: random.Random, mu: float, sigma: float, cap: int) -> int:
    return min(cap, 1 + int(rng.lognormvariate(mu, sigma)))


DOMAINS = [
    b"www.example.com", b"mail.example.org", b"cdn.example.net", b"api.example.com",
    b"updates.example.org", b"login.example.net", b"static.example.com", b"time.example.org",
    b"telemetry.example.net", b"assets.example.com", b"docs.example.org", b"wpad.example.net",
]


def dns_name(name: bytes) -> bytes:
    return b"".join(bytes((len(p),)) + p for p in name.split(b".")) + b"\0"


def dns_exchange(rng: random.Random) -> tuple[bytes, bytes]:
    qid, name = rng.getrandbits(16), rng.choice(DOMAINS)
    qtype = rng.choice((1, 1, 1, 28, 28, 65, 16))
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + question
    query += b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # EDNS0 OPT
    answers = rng.randrange(1, 5)
    rdata = {1: 4, 28: 16, 65: 40, 16: 60}[qtype]
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, rng.randrange(30, 3600), rdata)
        + rng.randbytes(rdata) for _ in range(answers)
    )
    reply = struct.pack("!HHHHHH", qid, 0x8180, 1, answers, 0, 0) + question + body
    return query, reply


def tls_record(kind: int, body: bytes) -> bytes:
    return struct.pack("!BHH", kind, 0x0303, len(body)) + body


def client_hello(rng: random.Random, sni: bytes) -> bytes:
    ext_sni = struct.pack("!HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    ext_versions = bytes.fromhex("002b0003020304")
    ext_groups = bytes.fromhex("000a000400020017")
    ext_keyshare = struct.pack("!HHHHH", 0x33, 38, 36, 0x1D, 32) + rng.randbytes(32)
    ext_pad = struct.pack("!HH", 0x15, 180) + bytes(180)
    exts = ext_sni + ext_versions + ext_groups + ext_keyshare + ext_pad
    suites = bytes.fromhex("130113021303c02bc02fc02cc030")
    body = (
        b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
        + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
        + struct.pack("!H", len(exts)) + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


def server_hello(rng: random.Random) -> bytes:
    exts = bytes.fromhex("002b00020304") + struct.pack("!HHHH", 0x33, 36, 0x1D, 32)
    exts += rng.randbytes(32)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    return tls_record(22, b"\x02" + len(body).to_bytes(3, "big") + body)


def tls_appdata(pool: Pool, n: int) -> bytes:
    """n bytes of TLS 1.3 application-data records (at most 16 KiB of payload each)."""
    out, left = [], n
    while left > 5:
        size = min(left - 5, 16384)
        out.append(tls_record(23, pool.take(size)))
        left -= size + 5
    return b"".join(out)
