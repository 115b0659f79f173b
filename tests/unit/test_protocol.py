"""Tests for generator.codec: every PROTOCOL.md §3 vector plus property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.codec import (
    CHECKSUM_SIZE,
    FLAG_DATA,
    FLAG_ENCODED,
    FLAG_PEER,
    FLAG_SYSINFO,
    FLAG_TCP,
    FLAG_UNKNOWN0,
    FLAG_UNKNOWN1,
    MIN_MESSAGE,
    PORT_BLACKLIST,
    SYSINFO_SIZE,
    DecodeError,
    Message,
    TcpStreamDecoder,
    checksum,
    crypt,
    decode,
    encode,
    encode_tcp,
    encoded_length,
    epoch_week,
    is_blacklisted,
    keystream,
    ports,
    ports_at,
)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --- §3 vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "when", "week", "expected"),
    [
        ("192.0.2.1", "2026-11-26 12:00:00", 2968, (17075, 9674, 30249, 38636)),
        ("198.51.100.77", "2009-04-01 00:00:00", 2047, (13976, 59288, 18412, 56174)),
        ("203.0.113.200", "2026-11-29 23:59:59", 2968, (19190, 43880, 61023, 54685)),
        ("203.0.113.200", "2026-11-30 00:00:00", 2969, (19190, 43880, 41362, 43676)),
    ],
)
def test_port_vectors(ip: str, when: str, week: int, expected: tuple[int, ...]) -> None:
    assert epoch_week(utc(when)) == week
    assert ports(ip, week) == expected
    assert ports_at(ip, utc(when)) == expected


def test_checksum_vectors() -> None:
    assert checksum(b"") == 0
    assert checksum(bytes(range(14))) == 0x00038472


@pytest.mark.parametrize(
    ("key_lo", "key_hi", "expected"),
    [
        (1, 0, "0208208000000000"),
        (0x80000000, 0x80000000, "0104104000000000"),
        (0, 0, "0000000000000000"),
    ],
)
def test_keystream_vectors(key_lo: int, key_hi: int, expected: str) -> None:
    assert keystream(key_lo, key_hi, 8).hex() == expected
    assert crypt(key_lo, key_hi, bytes(8)).hex() == expected


UDP_PROBE = Message(0x12345678, 0x9ABCDEF0, 0x8001)
TCP_PROBE = Message(0x11111111, 0x22222222, 0x8005)
DATA_MSG = Message(
    0xDEADBEEF,
    0x01020304,
    0x8049,
    peer_ip="127.0.0.1",
    peer_port=40000,
    data_flags=1,
    data=b"hello conficker",
    noise=b"\xaa" * 5,
)
CLEAR_PROBE = Message(0, 0, 0x8001)

UDP_VECTORS = [
    (UDP_PROBE, "78563412f0debc9af044c4310414"),
    (
        DATA_MSG,
        "efbeadde0403020197f89f800001409d051f4068656c6d6b30236f6e6669626e71227374ff12aebaebafbe",
    ),
    (CLEAR_PROBE, "0000000000000000018004290000"),
]
TCP_HEX = "0e001111111122222222270845dd1040"


@pytest.mark.parametrize(("msg", "hexstr"), UDP_VECTORS)
def test_udp_message_vectors(msg: Message, hexstr: str) -> None:
    assert encode(msg).hex() == hexstr
    assert decode(bytes.fromhex(hexstr)) == msg


def test_tcp_message_vector() -> None:
    assert encode_tcp(TCP_PROBE).hex() == TCP_HEX
    wire = bytes.fromhex(TCP_HEX)
    assert decode(wire[2:]) == TCP_PROBE
    decoder = TcpStreamDecoder()
    assert decoder.feed(wire) == [TCP_PROBE]
    assert decoder.errors == [] and not decoder.failed


def test_decoded_vector_fields() -> None:
    m = decode(bytes.fromhex(UDP_VECTORS[1][1]))
    assert (m.key_lo, m.key_hi, m.flags) == (0xDEADBEEF, 0x01020304, 0x8049)
    assert (m.peer_ip, m.peer_port) == ("127.0.0.1", 40000)
    assert (m.data_flags, m.data, m.noise) == (1, b"hello conficker", b"\xaa" * 5)
    assert (m.unknown0, m.unknown1, m.sysinfo) == (None, None, None)
    assert m.kind == "data"
    for hexstr in ("78563412f0debc9af044c4310414", "0000000000000000018004290000"):
        m = decode(bytes.fromhex(hexstr))
        assert m.flags == 0x8001 and m.kind == "control" and m.noise == b""
    m = decode(bytes.fromhex(TCP_HEX)[2:])
    assert (m.key_lo, m.key_hi, m.flags) == (0x11111111, 0x22222222, 0x8005)
    assert m.flags & FLAG_TCP and m.flags & FLAG_ENCODED


# --- example-based behaviour -----------------------------------------------------------------


def test_bad_checksum_is_rejected() -> None:
    for msg, _ in UDP_VECTORS:
        with pytest.raises(DecodeError, match="checksum"):
            decode(encode(msg, bad_checksum=True))


def test_decode_reasons() -> None:
    with pytest.raises(DecodeError, match="too short"):
        decode(bytes(MIN_MESSAGE - 1))
    # key 0:0 with FLAG_DATA and a declared length of 100 but only the checksum after it
    with pytest.raises(DecodeError, match="truncated data block"):
        decode(bytes(8) + bytes([FLAG_DATA, 0, 1, 100, 0]) + bytes(CHECKSUM_SIZE))
    with pytest.raises(DecodeError, match="truncated sysinfo"):
        decode(bytes(8) + bytes([FLAG_SYSINFO, 0]) + bytes(10))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flags": FLAG_PEER},
        {"flags": 0, "unknown0": 1},
        {"flags": FLAG_DATA, "data_flags": 0},
        {"flags": FLAG_SYSINFO, "sysinfo": bytes(SYSINFO_SIZE - 1)},
        {"flags": 0x10000},
        {"flags": FLAG_PEER, "peer_ip": "1.2.3.4", "peer_port": 70000},
    ],
)
def test_message_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Message(key_lo=0, key_hi=0, **kwargs)


def test_stream_several_per_segment_and_split() -> None:
    stream = encode_tcp(TCP_PROBE) + encode_tcp(DATA_MSG) + encode_tcp(CLEAR_PROBE)
    decoder = TcpStreamDecoder()
    assert decoder.feed(stream[:5]) == []
    assert decoder.feed(stream[5:40]) == [TCP_PROBE]
    assert decoder.feed(stream[40:]) == [DATA_MSG, CLEAR_PROBE]


def test_stream_stops_after_bad_frame() -> None:
    bad = encode_tcp(UDP_PROBE, bad_checksum=True)
    decoder = TcpStreamDecoder()
    assert decoder.feed(encode_tcp(TCP_PROBE) + bad + encode_tcp(TCP_PROBE)) == [TCP_PROBE]
    assert decoder.failed and len(decoder.errors) == 1
    frame, err = decoder.errors[0]
    assert frame == bad[2:] and "checksum" in str(err)
    assert decoder.feed(encode_tcp(TCP_PROBE)) == []


def test_blacklist_facts() -> None:
    assert len(PORT_BLACKLIST) == 64
    assert all(is_blacklisted(p) for p in range(2048))
    for p in (3389, 5060, 8080, 8443, 5353, 1900, 4500, 3478, 27015, 6881, 10000):
        assert is_blacklisted(p), p
    share = sum(map(is_blacklisted, range(65536))) / 65536
    assert 0.13 < share < 0.15


# --- property tests --------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    flags = draw(st.integers(0, 0xFFFF))
    opt = {}
    if flags & FLAG_PEER:
        opt["peer_ip"] = str(draw(st.ip_addresses(v=4)))
        opt["peer_port"] = draw(st.integers(0, 0xFFFF))
    if flags & FLAG_UNKNOWN0:
        opt["unknown0"] = draw(u32)
    if flags & FLAG_UNKNOWN1:
        opt["unknown1"] = draw(u32)
    if flags & FLAG_DATA:
        opt["data_flags"] = draw(st.integers(0, 0xFF))
        opt["data"] = draw(st.binary(max_size=300))
    if flags & FLAG_SYSINFO:
        opt["sysinfo"] = draw(st.binary(min_size=SYSINFO_SIZE, max_size=SYSINFO_SIZE))
    key_lo, key_hi = draw(st.one_of(st.just((0, 0)), st.tuples(u32, u32)))
    noise = draw(st.binary(max_size=40))
    return Message(key_lo, key_hi, flags, noise=noise, **opt)


@given(messages())
def test_round_trip(msg: Message) -> None:
    wire = encode(msg)
    assert decode(wire) == msg
    assert encoded_length(msg) == len(wire)
    assert msg.kind == ("data" if msg.flags & FLAG_DATA else "control")
    with pytest.raises(DecodeError):
        decode(encode(msg, bad_checksum=True))


@given(st.lists(messages(), max_size=6), st.data())
def test_stream_round_trip_random_split(msgs: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode_tcp(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = TcpStreamDecoder()
    got: list[Message] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += decoder.feed(stream[start:end])
    assert got == msgs
    assert decoder.errors == [] and not decoder.failed


@given(messages(), st.data())
def test_single_bit_flip_detected(msg: Message, data: st.DataObject) -> None:
    wire = bytearray(encode(msg))
    bit = data.draw(st.integers(0, 8 * (len(wire) - len(msg.noise)) - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    try:
        assert decode(bytes(wire)) != msg
    except DecodeError:
        pass


@given(messages(), st.data())
def test_truncation_before_checksum_end(msg: Message, data: st.DataObject) -> None:
    wire = encode(msg)
    cut = data.draw(st.integers(0, len(wire) - len(msg.noise) - 1))
    with pytest.raises(DecodeError):
        decode(wire[:cut])


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(payload: bytes) -> None:
    try:
        msg = decode(payload)
    except DecodeError:
        return
    assert encode(msg) == payload


@given(st.binary(max_size=300), st.integers(1, 50))
def test_stream_random_bytes_never_raise(stream: bytes, step: int) -> None:
    decoder = TcpStreamDecoder()
    for i in range(0, len(stream), step):
        decoder.feed(stream[i : i + step])
    assert len(decoder.errors) <= 1


@settings(max_examples=300)
@given(st.ip_addresses(v=4), st.integers(0, 10000), st.integers(0, 10000))
def test_ports_properties(ip: object, week: int, other_week: int) -> None:
    result = ports(str(ip), week)
    assert not any(map(is_blacklisted, result))
    assert result[0] != result[1] and result[2] != result[3]
    assert ports(str(ip), other_week)[:2] == result[:2]
