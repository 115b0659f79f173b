"""The scenario registry: every scenario module registers its builders with @scenario;
generator.traffic.pcaps lists them in a fixed order and writes one pcap each."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from scapy.packet import Packet

from .packets import EXPECT_KEYS


@dataclass(frozen=True)
class Scenario:
    """One pcap: its name (file stem), what it holds, how to build it and what it should yield."""

    name: str
    description: str
    build: Callable[[random.Random], list[Packet]]
    expect: dict[str, int] = field(default_factory=dict)
    large: bool = False
    attempts: dict[str, int] = field(default_factory=dict)  # source address -> attempts

    @property
    def seed(self) -> int:
        """Stable per-scenario seed (zlib.crc32 of the name; never Python's salted hash())."""
        return zlib.crc32(self.name.encode("ascii"))

    @property
    def negative(self) -> bool:
        """True when a correct detector reports nothing for this scenario."""
        return not any(self.expect.values())

    def packets(self) -> list[Packet]:
        """Build the packet list with a fresh random.Random(self.seed)."""
        return self.build(random.Random(self.seed))

    @property
    def filename(self) -> str:
        return f"{self.name}.pcap"


REGISTERED: list[Scenario] = []  # in import order; pcaps.SCENARIOS orders them


def scenario(
    name: str, *, large: bool = False, attempts: dict[str, int] | None = None, **expect: int
) -> Callable[[Callable[[random.Random], list[Packet]]], Callable[[random.Random], list[Packet]]]:
    """Register a builder; its docstring becomes the scenario description."""
    unknown = set(expect) - set(EXPECT_KEYS)
    if unknown:
        raise ValueError(f"unknown expect keys {sorted(unknown)}")
    counts = {key: expect.get(key, 0) for key in EXPECT_KEYS}

    def register(
        build: Callable[[random.Random], list[Packet]],
    ) -> Callable[[random.Random], list[Packet]]:
        doc = " ".join((build.__doc__ or "").split())
        REGISTERED.append(Scenario(name, doc, build, counts, large, attempts or {}))
        return build

    return register
