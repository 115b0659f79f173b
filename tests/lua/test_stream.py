"""The decoder's TCP stream machine under LuaJIT and Lua 5.4, against the Python codec:
segments that arrive out of order, twice, overlapping or repacketized give each message
exactly once; the reorder bound holds at its limit and gives the direction up past it."""

from __future__ import annotations

import random

import pytest
from stand_in import Decoder, tcp_frame
from test_decoder import ENGINES, SPEC, counts, decoder, random_message

from generator import codec as P

CLIENT, LISTENER = 50000, 38636
SEQ_START = "cfp2p_seq_to_server"  # what the SYN's decoder rule leaves for the data rule


def send(dec: Decoder, flow: int, seq: int, data: bytes) -> tuple[int, int]:
    frame = tcp_frame(data, seq, CLIENT, LISTENER)
    return counts(dec.match(data, CLIENT, LISTENER, flow, tcp=True, frame=frame))


def held_within_bound(segments: list[tuple[int, int]]) -> bool:
    """Whether the decoder's reorder buffer (pieces of what arrived ahead of a gap, first
    copy kept) stays within decoder.reorder_bytes and reorder_segments: the same
    bookkeeping as the Lua, on offsets."""
    nxt, held = 0, []  # held: sorted (start, end)
    for a, b in segments:
        if b <= nxt:
            continue
        a = max(a, nxt)
        if a > nxt:
            pieces, cur = [], a
            for s, e in held:
                if cur < b and s > cur:
                    pieces.append((cur, min(s, b)))
                cur = max(cur, e)
            if cur < b:
                pieces.append((cur, b))
            held = sorted(held + pieces)
            if sum(e - s for s, e in held) > SPEC.decoder.reorder_bytes:
                return False
            if len(held) > SPEC.decoder.reorder_segments:
                return False
            continue
        nxt = b
        while held and held[0][0] <= nxt:
            nxt = max(nxt, held.pop(0)[1])
    return True


def lossy(rng: random.Random, stream: bytes) -> list[tuple[int, bytes]]:
    """The stream cut into segments, then reordered, duplicated, resent in other cuts and
    overlapped with corrupt copies of bytes that were already delivered once."""
    cuts = sorted(rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(1, 12))))
    bounds = list(zip([0, *cuts], [*cuts, len(stream)], strict=True))
    order = list(bounds)
    for _ in range(rng.randint(0, 4)):  # local reordering
        k = rng.randrange(len(order))
        j = min(len(order) - 1, k + rng.randint(1, 3))
        order[k], order[j] = order[j], order[k]
    arrivals: list[tuple[int, bytes]] = []
    delivered: list[tuple[int, int]] = []
    for a, b in order:
        arrivals.append((a, stream[a:b]))
        delivered.append((a, b))
        roll = rng.random()
        if roll < 0.2:  # exact retransmission of something already sent
            x, y = rng.choice(delivered)
            arrivals.append((x, stream[x:y]))
        elif roll < 0.35:  # a resend that repacketizes: from inside one old segment on
            x, _ = rng.choice(delivered)
            y = min(len(stream), x + rng.randint(1, 400))
            arrivals.append((x, stream[x:y]))
        elif roll < 0.45:  # a corrupt copy of bytes that were already delivered
            x, y = rng.choice(delivered)
            if y - x > 1:
                x = rng.randrange(x, y - 1)
                arrivals.append((x, bytes(c ^ 0x5A for c in stream[x:y])))
    return arrivals


@pytest.mark.parametrize("lua", ENGINES)
def test_lossy_streams_give_the_codec_messages(lua):
    rng = random.Random(f"lossy-{lua}")
    tcp = decoder(lua, "tcp", "to_server")
    checked = 0
    for flow in range(1, 400):
        msgs = [random_message(rng, max_data=400) for _ in range(rng.randint(1, 5))]
        stream = b"".join(P.encode_tcp(m) for m in msgs)
        arrivals = lossy(rng, stream)
        if not held_within_bound([(a, a + len(d)) for a, d in arrivals]):
            continue
        # near the end of the sequence space now and then: the numbers wrap
        isn = rng.choice([rng.getrandbits(32), 2**32 - rng.randint(1, 3000)])
        tcp.flowints[flow] = {SEQ_START: isn}
        found = [0, 0]
        for a, data in arrivals:
            c, d = send(tcp, flow, isn + a, data)
            found[0] += c
            found[1] += d
        want = [sum(m.kind == "control" for m in msgs), sum(m.kind == "data" for m in msgs)]
        assert found == want, (flow, [m.flags for m in msgs])
        assert tcp.flowints[flow].get("cfp2p_skip", 0) == 0
        checked += 1
    assert checked > 300


def _held_case(lua: str, ahead: int, pieces: int) -> tuple[list[tuple[int, int]], int]:
    """A control message whose noise makes it 100 + `ahead` bytes: its first 100 bytes
    come last, after `ahead` bytes in `pieces` segments sent in reverse order."""
    msg = P.Message(key_lo=9, key_hi=10, flags=0x8005, noise=bytes(100 + ahead - 16))
    wire = P.encode_tcp(msg)
    assert len(wire) == 100 + ahead and P.decode(wire[2:]).flags == 0x8005
    tcp = decoder(lua, "tcp", "to_server")
    tcp.flowints[1] = {SEQ_START: 1000}
    size = -(-ahead // pieces)
    starts = list(range(100, 100 + ahead, size))
    got = []
    for a in reversed(starts):
        got.append(send(tcp, 1, 1000 + a, wire[a : min(a + size, 100 + ahead)]))
    got.append(send(tcp, 1, 1000, wire[:100]))
    return got, tcp.flowints[1].get("cfp2p_skip", 0)


@pytest.mark.parametrize("lua", ENGINES)
def test_reorder_bound_at_and_past_its_limit(lua):
    limit, pieces = SPEC.decoder.reorder_bytes, SPEC.decoder.reorder_segments
    got, skip = _held_case(lua, limit, pieces)
    assert got[-1] == (1, 0) and sum(map(sum, got)) == 1 and skip == 0
    got, skip = _held_case(lua, limit + 1, pieces)  # one byte too many
    assert sum(map(sum, got)) == 0 and skip == 0
    got, skip = _held_case(lua, 800, pieces + 1)  # one piece too many
    assert sum(map(sum, got)) == 0 and skip == 0


@pytest.mark.parametrize("lua", ENGINES)
def test_without_the_handshake_the_first_segment_starts_the_direction(lua):
    """Midstream (no SYN seen): the direction starts at the first segment that arrives;
    a retransmission of it later is not fed again."""
    tcp = decoder(lua, "tcp", "to_server")
    wire = P.encode_tcp(P.Message(key_lo=3, key_hi=4, flags=0x8045, data_flags=0, data=b"y" * 90))
    assert send(tcp, 1, 5000, wire[:40]) == (0, 0)
    assert send(tcp, 1, 5040, wire[40:]) == (0, 1)
    assert send(tcp, 1, 5040, wire[40:]) == (0, 0)
    assert send(tcp, 1, 5000, wire) == (0, 0)


@pytest.mark.parametrize("lua", ENGINES)
def test_a_held_copy_wins_over_a_later_segment_that_covers_it(lua):
    """Bytes 100-199 arrive first (held ahead of a gap); a segment from 0 to the end then
    brings a corrupt copy of them: the message is valid only if the held copy is kept."""
    wire = P.encode_tcp(P.Message(key_lo=5, key_hi=6, flags=0x8045, data_flags=0, data=b"z" * 300))
    tcp = decoder(lua, "tcp", "to_server")
    tcp.flowints[1] = {SEQ_START: 7000}
    assert send(tcp, 1, 7100, wire[100:200]) == (0, 0)
    later = wire[:100] + bytes(c ^ 0xFF for c in wire[100:200]) + wire[200:]
    assert send(tcp, 1, 7000, later) == (0, 1)


@pytest.mark.parametrize("lua", ENGINES)
def test_held_bytes_are_bounded_per_lua_state(lua):
    """All directions of a Lua state together hold at most decoder.reorder_total bytes
    (Suricata 8 caps a state's memory): the direction that would pass it is given up."""
    per = SPEC.decoder.reorder_bytes
    full = SPEC.decoder.reorder_total // per
    msg = P.Message(key_lo=9, key_hi=10, flags=0x8005, noise=bytes(100 + per - 16))
    wire = P.encode_tcp(msg)
    tcp = decoder(lua, "tcp", "to_server")
    for flow in range(1, full + 2):
        tcp.flowints[flow] = {SEQ_START: 0}
        assert send(tcp, flow, 100, wire[100:]) == (0, 0)
    found = [send(tcp, flow, 0, wire[:100]) for flow in range(1, full + 2)]
    assert found == [(1, 0)] * full + [(0, 0)]
