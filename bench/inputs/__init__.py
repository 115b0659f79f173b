"""Deterministic benchmark inputs, written as classic pcap records with struct (no scapy).

Three inputs (INPUTS), each a stream of sessions drawn by a seeded random.Random:

- mix: a realistic mix, mostly benign (TLS and plain HTTP over TCP, QUIC, DNS, NTP, RTP
  calls, SSH, database-like TCP services, other UDP, background SYNs) with four
  Conficker-infected hosts probing, scanning and talking to peers among it;
- flood: UDP datagrams of random bytes (14-1400) between random hosts and random
  non-blacklisted ports >= 2048, every one a new flow and a candidate for the decoder;
- tcp: short TCP sessions (handshake, one to three request/response rounds of random
  bytes, FIN teardown) on random non-blacklisted server ports >= 2048.

Every frame is Ethernet/IPv4/UDP or TCP with correct IPv4, UDP and TCP checksums. While
writing, each packet that a decoder rule could see is counted by its role (ROLES) and server
(listener) port, so that the packets which satisfy the decoder rules' header, flow and dsize
conditions can be counted from the input for any port lists the rules use.

Files are cached under .cache/bench/, named by the input, the scale and a hash of this
package's source and of the generator modules it uses (codec, traffic): they are written
again only when one of those changes.

Modules, in import order: packets (pcap format, frames, Conv), ingredients (payloads,
hosts, ports), sessions (the session kinds: the mix and the adversarial ones), specs
(InputSpec, INPUTS, PROFILE_INPUTS, InputInfo), writer (generate: the pcap writer), cache
(source_hash, ensure). This package re-exports what bench's other modules use.
"""

from bench.inputs.cache import CACHE, ROOT, ensure, source_hash
from bench.inputs.packets import (
    BASE_TS,
    MIN_MESSAGE,
    MSS,
    PCAP_GLOBAL,
    RECORD,
    ROLES,
    Conv,
    Packet,
    iter_records,
    tcp_frame,
    udp_frame,
)
from bench.inputs.sessions import (
    FLOOD,
    MIX,
    TCP_SESSIONS,
    Kind,
    s_flood,
    s_flood_long,
    s_flood_short,
    s_tcp_high,
)
from bench.inputs.specs import INPUTS, PROFILE_INPUTS, InputInfo, InputSpec
from bench.inputs.writer import generate

__all__ = [
    "BASE_TS", "CACHE", "FLOOD", "INPUTS", "MIN_MESSAGE", "MIX", "MSS", "PCAP_GLOBAL",
    "PROFILE_INPUTS", "RECORD", "ROLES", "ROOT", "TCP_SESSIONS", "Conv", "InputInfo",
    "InputSpec", "Kind", "Packet", "ensure", "generate", "iter_records", "s_flood",
    "s_flood_long", "s_flood_short", "s_tcp_high", "source_hash", "tcp_frame", "udp_frame",
]
