"""The inputs: their specs (INPUTS, the main inputs; PROFILE_INPUTS, the flood's short and
long variants the profile arms also run on) and InputInfo, what was written with the
decoder-rule view of it (packets per role and server port)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from bench.inputs.packets import ROLES
from bench.inputs.sessions import FLOOD, MIX, TCP_SESSIONS, Kind, s_flood_long, s_flood_short
from generator import codec as protocol


@dataclass(frozen=True)
class InputSpec:
    name: str
    title: str
    kinds: list[Kind]
    packets: int  # at scale 1.0
    pps: int  # packets per second of traffic time

    def target(self, scale: float) -> int:
        return max(50, round(self.packets * scale))


INPUTS = [
    InputSpec("mix", "realistic mix", MIX, 1_000_000, 10_000),
    InputSpec("flood", "UDP flood, random payloads", FLOOD, 200_000, 10_000),
    InputSpec("tcp", "short TCP sessions, high ports", TCP_SESSIONS, 300_000, 10_000),
]

PROFILE_INPUTS = [
    InputSpec("flood-short", "UDP flood, 14-100 random bytes",
              [Kind("udp-flood-short", s_flood_short, 1.0)], 50_000, 10_000),
    InputSpec("flood-long", "UDP flood, 1000-1400 random bytes",
              [Kind("udp-flood-long", s_flood_long, 1.0)], 50_000, 10_000),
]


@dataclass
class InputInfo:
    """What was written, with the decoder-rule view of it."""

    name: str
    title: str
    path: str
    packets: int = 0
    bytes: int = 0  # pcap file size
    seconds: float = 0.0  # traffic time covered
    flows: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    roles: dict[str, dict[int, int]] = field(default_factory=dict)  # role -> server port -> n

    def count(self, roles: tuple[str, ...], allowed: bool | None = None) -> int:
        """Packets with one of these roles; allowed=True/False: only those whose server port
        the worm may / may not listen on."""
        return sum(n for r in roles for port, n in self.roles.get(r, {}).items()
                   if allowed is None or protocol.is_blacklisted(port) != allowed)

    @property
    def decoded(self) -> int:
        """Payload packets whose listener port is allowed: candidates for deciphering."""
        return self.count(ROLES[:4], allowed=True)

    @property
    def blacklisted(self) -> int:
        """Payload packets whose listener port is blacklisted."""
        return self.count(ROLES[:4], allowed=False)

    @property
    def syn_allowed(self) -> int:
        """Clients' SYNs to allowed ports."""
        return self.count(("tcp/syn",), allowed=True)

    @classmethod
    def from_json(cls, text: str) -> InputInfo:
        data = json.loads(text)
        data["roles"] = {r: {int(p): n for p, n in v.items()} for r, v in data["roles"].items()}
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)
