"""The rendered Lua decoder agrees with the Python reference codec, under LuaJIT
(Suricata 7) and Lua 5.4 (Suricata 8), on thousands of random messages."""

from __future__ import annotations

import itertools
import random

import pytest
from stand_in import Decoder, tcp_frame

from generator import codec as P
from generator import spec
from generator.targets import luadecoder
from generator.targets.suricata import lua as suricata_lua

SPEC = spec.load()
ENGINES = ["luajit", "lua54"]
TARGET = {e.lua: e for e in SPEC.decoder.engines}  # Lua kind -> the engine's script
SCRIPTS = {lua: suricata_lua.render_lua(SPEC, SPEC.defaults, e) for lua, e in TARGET.items()}


def sid_of(lua: str, transport: str, direction: str, syn: bool = False) -> int:
    return next(
        spec.rule_sid(SPEC.defaults, d)
        for d in SPEC.decoder.rules_of(TARGET[lua])
        if (d.transport, d.direction, d.syn) == (transport, direction, syn)
    )


def decoder(lua: str, transport: str, direction: str, syn: bool = False) -> Decoder:
    """A Lua state of the engine's script, as the decoder rule it names would have it."""
    return Decoder(SCRIPTS[lua], lua, sid_of(lua, transport, direction, syn))


LISTENER, CLIENT = 38636, 50000  # neither is blacklisted


def random_message(rng: random.Random, max_data: int = 300) -> P.Message:
    flags = (
        rng.getrandbits(16) & ~0x00F8
        | rng.choice([0, 0x08, 0x10, 0x20, 0x40, 0x80])
        | rng.choice([0, 0x08 | 0x40, 0x80 | 0x10, 0x20])
    )
    data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, max_data)))
    return P.Message(
        key_lo=rng.getrandbits(32) if rng.random() > 0.05 else 0,
        key_hi=rng.getrandbits(32) if rng.random() > 0.05 else 0,
        flags=flags,
        peer_ip="127.0.0.1" if flags & P.FLAG_PEER else None,
        peer_port=rng.getrandbits(16) if flags & P.FLAG_PEER else None,
        unknown0=rng.getrandbits(32) if flags & P.FLAG_UNKNOWN0 else None,
        unknown1=rng.getrandbits(32) if flags & P.FLAG_UNKNOWN1 else None,
        data_flags=rng.getrandbits(8) if flags & P.FLAG_DATA else None,
        data=data if flags & P.FLAG_DATA else None,
        sysinfo=bytes(rng.getrandbits(8) for _ in range(26)) if flags & P.FLAG_SYSINFO else None,
        noise=bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 0, rng.randint(1, 60)]))),
    )


def expected(payload: bytes) -> tuple[int, int]:
    """(control, data) messages the codec finds in a UDP payload."""
    try:
        msg = P.decode(payload)
    except P.DecodeError:
        return 0, 0
    return (0, 1) if msg.kind == "data" else (1, 0)


BLOCK_FACTS = ("cfp2p_peer", "cfp2p_data_len", "cfp2p_data_flags", "cfp2p_data_head")


def facts(msg: P.Message) -> dict[str, str]:
    """The block facts the decoder should leave for a valid message, from the codec's
    decoding ("-" where the message has no such block)."""
    got = dict.fromkeys(BLOCK_FACTS, "-")
    if msg.peer_ip is not None:
        got["cfp2p_peer"] = f"{msg.peer_ip}:{msg.peer_port}"
    if msg.data is not None:
        got |= {"cfp2p_data_len": str(len(msg.data)), "cfp2p_data_flags": f"0x{msg.data_flags:02x}",
                "cfp2p_data_head": msg.data[:16].hex()}
    return got


def block_facts(verdict) -> dict[str, str]:
    return {k: v for k, v in verdict.flowvars.items() if k in BLOCK_FACTS}


def counts(verdict) -> tuple[int, int]:
    control, data = verdict.flowint("cfp2p_control"), verdict.flowint("cfp2p_data")
    assert verdict.flowint("cfp2p_messages") == control + data
    return control, data


@pytest.fixture(params=ENGINES)
def udp(request) -> Decoder:
    return decoder(request.param, "udp", "to_server")


@pytest.fixture(params=ENGINES)
def tcp(request) -> Decoder:
    return decoder(request.param, "tcp", "to_server")


VECTORS = {
    "78563412f0debc9af044c4310414": (1, 0, "0x8001"),
    "efbeadde0403020197f89f800001409d051f4068656c6d6b30236f6e6669626e71227374ff12aebaebafbe": (
        0,
        1,
        "0x8049",
    ),
    "0000000000000000018004290000": (1, 0, "0x8001"),
}


@pytest.mark.parametrize("hexmsg", VECTORS)
def test_protocol_vectors(udp, hexmsg):
    control, data, flags = VECTORS[hexmsg]
    verdict = udp.match(bytes.fromhex(hexmsg), CLIENT, LISTENER)
    assert counts(verdict) == (control, data)
    assert verdict.flowvars == {
        "cfp2p_flags": flags,
        "cfp2p_kind": "data" if data else "control",
        "cfp2p_port_match": "false",  # LISTENER is none of 192.0.2.2's ports
    } | facts(P.decode(bytes.fromhex(hexmsg)))


def test_vector_facts(udp):
    """PROTOCOL.md's data-transfer vector, read as the analyst sees it: peer 127.0.0.1 (the
    u32 0x0100007F) port 40000, data_flags 1, the data block's length and first bytes."""
    hexmsg = next(h for h, v in VECTORS.items() if v[2] == "0x8049")
    verdict = udp.match(bytes.fromhex(hexmsg), CLIENT, LISTENER)
    assert verdict.flowvars["cfp2p_peer"] == "127.0.0.1:40000"
    assert verdict.flowvars["cfp2p_data_flags"] == "0x01"
    data = P.decode(bytes.fromhex(hexmsg)).data
    assert verdict.flowvars["cfp2p_data_len"] == str(len(data))
    assert bytes.fromhex(verdict.flowvars["cfp2p_data_head"]) == data[:16]


def test_tcp_vector(tcp):
    verdict = tcp.match(
        bytes.fromhex("0e001111111122222222270845dd1040"), CLIENT, LISTENER, tcp=True
    )
    assert counts(verdict) == (1, 0)
    assert verdict.flowvars["cfp2p_flags"] == "0x8005"


def test_blacklisted_listener_is_never_decoded(udp):
    payload = bytes.fromhex("78563412f0debc9af044c4310414")
    assert counts(udp.match(payload, CLIENT, 80)) == (0, 0)
    to_client = decoder(udp.engine, "udp", "to_client")
    assert counts(to_client.match(payload, LISTENER, 80)) == (1, 0)  # listener is the source
    assert counts(to_client.match(payload, 80, LISTENER)) == (0, 0)


def test_random_valid_mutated_truncated(udp):
    rng = random.Random(f"udp-{udp.engine}")
    checked = {"valid": 0, "mutated": 0, "truncated": 0}
    for _ in range(1500):
        wire = P.encode(random_message(rng))
        cases = {"valid": wire, "truncated": wire[: rng.randrange(len(wire))]}
        mutated = bytearray(wire)
        mutated[rng.randrange(len(wire))] ^= 1 << rng.randrange(8)
        cases["mutated"] = bytes(mutated)
        for name, payload in cases.items():
            verdict = udp.match(payload, CLIENT, LISTENER) if len(payload) >= 14 else None
            got = counts(verdict) if verdict else (0, 0)
            assert got == expected(payload), (name, payload.hex())
            if got != (0, 0):
                assert block_facts(verdict) == facts(P.decode(payload)), (name, payload.hex())
            checked[name] += 1
    assert checked["valid"] == 1500


def test_random_bytes_never_error(udp):
    rng = random.Random(f"noise-{udp.engine}")
    for _ in range(2000):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(14, 400)))
        assert counts(udp.match(payload, CLIENT, LISTENER)) == expected(payload)


def test_tcp_streams_split_anywhere(tcp):
    rng = random.Random(f"tcp-{tcp.engine}")
    for flow in range(300):
        msgs = [random_message(rng) for _ in range(rng.randint(1, 4))]
        stream = b"".join(P.encode_tcp(m) for m in msgs)
        cuts = sorted(rng.sample(range(1, len(stream)), k=min(3, len(stream) - 1)))
        ends = list(itertools.accumulate(len(P.encode_tcp(m)) for m in msgs))
        found = [0, 0]
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            verdict = tcp.match(stream[a:b], CLIENT, LISTENER, flow_id=flow, tcp=True)
            c, d = counts(verdict)
            found[0] += c
            found[1] += d
            # the facts are those of the last message this segment completed
            done = [m for m, end in zip(msgs, ends, strict=True) if a < end <= b]
            if done:
                assert block_facts(verdict) == facts(done[-1])
        want = [sum(m.kind == "control" for m in msgs), sum(m.kind == "data" for m in msgs)]
        assert found == want, [m.flags for m in msgs]


def test_tcp_interleaved_flows_keep_their_own_state(tcp):
    a = P.encode_tcp(P.Message(key_lo=1, key_hi=2, flags=0x8005))
    b = P.encode_tcp(P.Message(key_lo=3, key_hi=4, flags=0x8045, data_flags=0, data=b"x" * 50))
    assert counts(tcp.match(a[:7], CLIENT, LISTENER, flow_id=1, tcp=True)) == (0, 0)
    assert counts(tcp.match(b[:20], CLIENT, LISTENER, flow_id=2, tcp=True)) == (0, 0)
    assert counts(tcp.match(b[20:], CLIENT, LISTENER, flow_id=2, tcp=True)) == (0, 1)
    assert counts(tcp.match(a[7:], CLIENT, LISTENER, flow_id=1, tcp=True)) == (1, 0)


def test_tcp_session_that_starts_with_garbage_is_skipped(tcp):
    """A session whose first frame is not a message is not Conficker: the decoder sets
    cfp2p_skip, which the TCP decoder rules test before calling Lua. A session that has
    carried a message is never skipped."""
    good = P.encode_tcp(P.Message(key_lo=5, key_hi=6, flags=0x8005))
    garbage = tcp.match(b"\x05\x00" + b"zzzzz", CLIENT, LISTENER, 1, tcp=True)
    assert counts(garbage) == (0, 0) and garbage.flowint("cfp2p_skip") == 1
    short = tcp.match(b"\x03\x00abc", CLIENT, LISTENER, 2, tcp=True)  # below the minimum
    assert short.flowint("cfp2p_skip") == 1
    split = tcp.match(good[:9], CLIENT, LISTENER, 3, tcp=True)  # a message in flight
    assert split.flowint("cfp2p_skip") == 0
    assert counts(tcp.match(good[9:], CLIENT, LISTENER, 3, tcp=True)) == (1, 0)
    later = tcp.match(b"\x05\x00" + b"zzzzz", CLIENT, LISTENER, 3, tcp=True)
    assert counts(later) == (0, 0) and later.flowint("cfp2p_skip") == 0


def test_udp_budget_bounds_work(udp):
    """The budget counts a frame's set-up (FRAME_COST) and every hashed byte: a data
    block one byte past it is not deciphered (Suricata 8 would come nearer its
    instruction limit); the verdict is 'no message', never an error."""
    most = SPEC.decoder.budget - luadecoder.FRAME_COST - 13  # key, flags, data header
    for size, found in ((most, (0, 1)), (most + 1, (0, 0))):
        msg = P.Message(key_lo=7, key_hi=8, flags=0x8040, data_flags=0, data=bytes(size))
        assert counts(udp.match(P.encode(msg), CLIENT, LISTENER)) == found, size


WORST_CASE = 250_000  # Lua VM instructions per call: half Suricata 8's default limit


def counted(dec: Decoder):
    """A function that runs one match() call and returns the VM instructions it took
    (Lua 5.4 count hook, every instruction)."""
    dec.lua.execute("""
      function counted(f, args)
        local n = 0
        debug.sethook(function() n = n + 1 end, "", 1)
        f(args)
        debug.sethook()
        return n
      end""")
    run = dec.lua.globals().counted

    def call(payload: bytes, flow: int, frame: bytes | None = None) -> int:
        h = dec.host
        h.payload, h.sp, h.dp, h.flow_id, h.frame = payload, CLIENT, LISTENER, flow, frame
        return run(dec._match, dec.lua.table_from({"packet": frame}))

    return call


def with_blocks(flags: int, data: bytes | None = None) -> P.Message:
    """A message carrying every optional block its flags name (data: the data block)."""
    return P.Message(
        key_lo=7,
        key_hi=8,
        flags=flags,
        peer_ip="127.0.0.1" if flags & P.FLAG_PEER else None,
        peer_port=1 if flags & P.FLAG_PEER else None,
        unknown0=3 if flags & P.FLAG_UNKNOWN0 else None,
        unknown1=4 if flags & P.FLAG_UNKNOWN1 else None,
        data_flags=0 if flags & P.FLAG_DATA else None,
        data=data if flags & P.FLAG_DATA else None,
        sysinfo=bytes(26) if flags & P.FLAG_SYSINFO else None,
    )


def adversarial_udp() -> dict[str, bytes]:
    budget = SPEC.decoder.budget
    cases = {}
    # the largest data block the budget verifies (its set-up and sysinfo count too)
    for size in (budget - luadecoder.FRAME_COST - 60, budget + 100, 65000):
        cases[f"data block of {size} bytes"] = P.encode(with_blocks(0x80C8, bytes(size)))
    return cases


def tiny_frames(n: int, flags: int = 0x80BD) -> bytes:
    """n valid TCP messages with every fixed block and no data: the most frames, each
    with the most set-up, per byte."""
    return P.encode_tcp(with_blocks(flags)) * n


def test_worst_case_stays_within_half_the_suricata8_instruction_limit():
    """Suricata 8 stops a Lua call after 500,000 VM instructions. Count them (Lua 5.4 count
    hook) on the costliest inputs: a data block just inside the per-call budget, one past
    it (refused before it is deciphered), a 64 KiB TCP segment of back-to-back small
    messages or of one data block, and a full reorder buffer of small messages released
    by the segment that fills the gap."""
    udp = counted(decoder("lua54", "udp", "to_server"))
    worst = {name: udp(p, 1) for name, p in adversarial_udp().items()}
    tcp_dec = decoder("lua54", "tcp", "to_server")
    tcp = counted(tcp_dec)
    many = tiny_frames(65000 // len(tiny_frames(1)))
    worst["64 KiB of small TCP messages"] = tcp(many, 2, tcp_frame(many, 0))
    packed = P.encode_tcp(with_blocks(0x80FD, b""))
    packed *= 65000 // len(packed)
    worst["64 KiB of messages with every block"] = tcp(packed, 5, tcp_frame(packed, 0))
    big = P.encode_tcp(P.Message(key_lo=3, key_hi=4, flags=0x8044, data_flags=0, data=bytes(64000)))
    worst["64 KiB TCP data block"] = tcp(big, 3, tcp_frame(big, 0))
    stream = tiny_frames((1460 + SPEC.decoder.reorder_bytes) // len(tiny_frames(1)) + 1)
    tcp_dec.flowints[4] = {"cfp2p_seq_to_server": 0}
    size = -(-SPEC.decoder.reorder_bytes // SPEC.decoder.reorder_segments)
    for a in range(1460 + SPEC.decoder.reorder_bytes - size, 1459, -size):
        assert tcp(stream[a : a + size], 4, tcp_frame(stream[a : a + size], a)) < 5000
    fill = stream[:1460]
    worst["reorder buffer released"] = tcp(fill, 4, tcp_frame(fill, 0))
    assert max(worst.values()) <= WORST_CASE, worst
    # the costliest ones were deciphered, not refused early
    deciphered = ["64 KiB of small TCP messages", "reorder buffer released"]
    deciphered.append("64 KiB of messages with every block")
    deciphered.append(next(iter(worst)))
    assert min(worst[k] for k in deciphered) > 100_000, worst


def test_udp_verified_up_to_16000_bytes(udp):
    """A datagram whose checksummed part is 16,000 bytes is verified within the budget."""
    msg = P.Message(key_lo=7, key_hi=8, flags=0x8040, data_flags=0, data=bytes(16000 - 13))
    assert len(P.encode(msg)) - 4 == 16000
    assert counts(udp.match(P.encode(msg), CLIENT, LISTENER)) == (0, 1)


# --- the port generator and the scan count -------------------------------------------------

WEEK = P.WEEK_SECONDS


def random_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randrange(256)) for _ in range(4))


@pytest.fixture(params=ENGINES)
def syn(request) -> Decoder:
    return decoder(request.param, "tcp", "to_server", syn=True)


def test_port_generator_agrees_with_codec(syn):
    """A first SYN to any of the destination's computed TCP ports is an attempt, and a
    message to any of its UDP ports; a port of the other transport is not, nor a datagram
    that holds no message."""
    udp = decoder(syn.engine, "udp", "to_server")
    rng = random.Random(f"ports-{syn.engine}")
    flows = iter(range(1, 10_000))
    for _ in range(300):
        ip, sec = random_ip(rng), rng.randrange(1_300_000_000, 2_000_000_000)
        tcp_a, udp_a, tcp_b, udp_b = P.ports(ip, P.epoch_week(sec))
        for port, expected in [(tcp_a, 1), (tcp_b, 1)] + [
            (p, 0) for p in {udp_a, udp_b} - {tcp_a, tcp_b}
        ]:
            verdict = syn.match(b"", CLIENT, port, next(flows), True, dip=ip, sec=sec)
            assert verdict.flowint("cfp2p_scan") == expected, (ip, sec, port)
        for port in (udp_a, udp_b):
            probe = P.encode(random_message(rng, max_data=20))
            verdict = udp.match(probe, CLIENT, port, dip=ip, sec=sec)
            assert verdict.flowint("cfp2p_scan") == 1, (ip, sec, port)
            verdict = udp.match(rng.randbytes(len(probe)), CLIENT, port, dip=ip, sec=sec)
            assert verdict.flowint("cfp2p_scan") == 0, (ip, sec, port)


def test_week_rollover_slop(syn):
    """The neighbouring week's weekly port counts within decoder.week_slop seconds of a
    Monday 00:00 UTC rollover, and not a second later."""
    slop = SPEC.decoder.week_slop
    rollover = P.EPOCH_OFFSET + 2968 * WEEK
    ip = "203.0.113.200"
    old, new = P.ports(ip, 2967)[2], P.ports(ip, 2968)[2]
    assert old != new
    cases = [
        (rollover - 1, old, 1),
        (rollover - 1, new, 1),
        (rollover - slop, new, 1),
        (rollover - slop - 1, new, 0),
        (rollover + slop - 1, old, 1),
        (rollover + slop, old, 0),
        (rollover + 3 * 86400, old, 0),
    ]
    for flow, (sec, port, attempt) in enumerate(cases, start=1):
        verdict = syn.match(b"", CLIENT, port, flow, True, dip=ip, sec=sec)
        assert verdict.flowint("cfp2p_scan") == attempt, (sec - rollover, port)


def test_syn_counted_once_per_connection(syn):
    ip, sec = "198.51.100.77", 1795694400
    port = P.ports(ip, P.epoch_week(sec))[0]
    scans = [syn.match(b"", CLIENT, port, flow, True, dip=ip, sec=sec) for flow in (1, 1, 1, 2)]
    assert [v.flowint("cfp2p_scan") for v in scans] == [1, 0, 0, 1]


def test_only_attempts_on_the_destination_count(udp):
    """Replies (to_client) are never attempts; IPv6 has no computed ports."""
    ip, sec = "198.51.100.77", 1795694400
    udp_port = P.ports(ip, P.epoch_week(sec))[1]
    msg = P.encode(random_message(random.Random(5)))
    assert udp.match(msg, CLIENT, udp_port, dip=ip, sec=sec).flowint("cfp2p_scan") == 1
    to_client = decoder(udp.engine, "udp", "to_client")
    reply = to_client.match(msg, udp_port, CLIENT, sip=ip, sec=sec)
    assert sum(counts(reply)) == 1 and reply.flowint("cfp2p_scan") == 0
    v6 = udp.match(msg, CLIENT, udp_port, 2, dip="2001:db8::1", sec=sec, ipver=6)
    assert sum(counts(v6)) == 1 and v6.flowint("cfp2p_scan") == 0
    assert v6.flowvars["cfp2p_port_match"] == "false"


def test_port_match_names_the_listener(udp):
    """Messages record whether the listener's port is one of its computed ports: the
    destination's for a datagram to it, the source's for one from it."""
    ip, sec = "203.0.113.200", 1795694400
    port = P.ports(ip, P.epoch_week(sec))[3]
    msg = P.encode(random_message(random.Random(3)))
    expect = counts(udp.match(msg, CLIENT, port, dip=ip, sec=sec))
    assert sum(expect) == 1
    assert udp.match(msg, CLIENT, port, dip=ip, sec=sec).flowvars["cfp2p_port_match"] == "true"
    assert udp.match(msg, CLIENT, LISTENER, dip=ip, sec=sec).flowvars["cfp2p_port_match"] == "false"
    to_client = decoder(udp.engine, "udp", "to_client")
    from_listener = to_client.match(msg, port, CLIENT, sip=ip, dip="192.0.2.9", sec=sec)
    assert from_listener.flowvars["cfp2p_port_match"] == "true"
    tcp = decoder(udp.engine, "tcp", "to_server")
    tcp_port = P.ports(ip, P.epoch_week(sec))[0]
    framed = P.encode_tcp(random_message(random.Random(4)))
    verdict = tcp.match(framed, CLIENT, tcp_port, 7, True, dip=ip, sec=sec)
    assert verdict.flowvars["cfp2p_port_match"] == "true"


def test_session_flag_marks_flows_with_a_message(tcp):
    """cfp2p_session stays set on the flow once a message of either kind went by (what
    block_tcp drops on, and what keeps a flow from being skipped)."""
    control = P.encode_tcp(P.Message(1, 2, 0x8005))
    data = P.encode_tcp(P.Message(3, 4, 0x8045, data_flags=1, data=b"x" * 40))
    assert tcp.match(data, CLIENT, LISTENER, 1, True).flowint("cfp2p_session") == 1
    assert tcp.match(control, CLIENT, LISTENER, 2, True).flowint("cfp2p_session") == 1
    later = tcp.match(b"more bytes", CLIENT, LISTENER, 2, True)
    assert later.flowint("cfp2p_session") == 1 and counts(later) == (0, 0)
    assert tcp.match(b"\x05\x00zzzzz", CLIENT, LISTENER, 3, True).flowint("cfp2p_session") == 0


def test_udp_flow_skipped_after_two_bad_datagrams(udp):
    """A UDP flow whose first two datagrams hold no message (and that carried none) is
    skipped; one bad datagram, or bad ones after a message, are not enough."""
    probe = P.encode(P.Message(7, 8, 0x8001))
    junk = bytes(range(40))
    assert udp.match(junk, CLIENT, LISTENER, 1).flowint("cfp2p_skip") == 0
    assert udp.match(junk, CLIENT, LISTENER, 1).flowint("cfp2p_skip") == 1
    assert udp.match(junk, CLIENT, LISTENER, 2).flowint("cfp2p_skip") == 0
    assert sum(counts(udp.match(probe, CLIENT, LISTENER, 2))) == 1
    after = udp.match(junk, CLIENT, LISTENER, 2)
    assert after.flowint("cfp2p_skip") == 0 and after.flowint("cfp2p_session") == 1


@pytest.mark.parametrize("lua", ENGINES)
def test_strict_flags_refuse_only_what_it_says(lua):
    """With the opt-in strict_flags, a message without protocol.seen_flags is refused
    (UDP: 0x8000; TCP: 0x8004); by default every valid message counts."""
    opts = SPEC.options(strict_flags=True)
    script = suricata_lua.render_lua(SPEC, opts, TARGET[lua])
    strict = {
        t: Decoder(script, lua, spec.rule_sid(opts, d))
        for d in SPEC.decoder.rules_of(TARGET[lua])
        if not d.syn and d.direction == "to_server"
        for t in [d.transport]
    }
    default = {t: decoder(lua, t, "to_server") for t in ("udp", "tcp")}
    cases = [("udp", 0x8001, 1), ("udp", 0x0001, 0), ("tcp", 0x8005, 1), ("tcp", 0x8001, 0)]
    for flow, (transport, flags, passes) in enumerate(cases, start=1):
        msg = P.Message(key_lo=flow, key_hi=2, flags=flags)
        wire = P.encode_tcp(msg) if transport == "tcp" else P.encode(msg)
        tcp = transport == "tcp"
        assert sum(counts(strict[transport].match(wire, CLIENT, LISTENER, flow, tcp))) == passes
        assert sum(counts(default[transport].match(wire, CLIENT, LISTENER, flow, tcp))) == 1
