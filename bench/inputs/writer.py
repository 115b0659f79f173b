"""The pcap writer: an input's sessions drawn by a seeded random.Random, interleaved by
time and written as classic pcap records, each packet counted by role and server port."""

from __future__ import annotations

import heapq
import math
import os
import random
from pathlib import Path

from bench.inputs.ingredients import Pool
from bench.inputs.packets import BASE_TS, PCAP_GLOBAL, RECORD, Packet
from bench.inputs.sessions import Kind
from bench.inputs.specs import InputInfo, InputSpec


def _mean_packets(kind: Kind, seed: int) -> float:
    """Mean packets per session of a kind, from a sample drawn with its own generator."""
    rng = random.Random(seed)
    pool = Pool(rng, 1 << 20)
    n = 60
    return sum(len(kind.build(rng, pool, 0)[0]) for _ in range(n)) / n


def generate(spec: InputSpec, scale: float, path: Path) -> InputInfo:
    """Write spec's input at `scale` to path (a classic pcap); return what was written.

    Sessions of each kind arrive as a Poisson process whose rate gives the kind its share
    of `spec.pps`; arrivals stop once the packets of the sessions started reach the target,
    and every started session is written in full, interleaved by time."""
    target = spec.target(scale)
    rng = random.Random(f"cfp2p-bench-{spec.name}")
    pool = Pool(rng)
    rates = []  # sessions per microsecond
    for i, kind in enumerate(spec.kinds):
        mean = _mean_packets(kind, seed=i)
        rates.append(kind.share * spec.pps / mean / 1e6)
    arrivals = [(rng.expovariate(r), i) for i, r in enumerate(rates)]
    heapq.heapify(arrivals)
    info = InputInfo(spec.name, spec.title, str(path))
    planned = 0
    active: list[tuple[int, int, list[Packet], int]] = []  # (time, order, packets, index)
    ports_of: dict[int, int] = {}  # order -> the session's server port
    order = 0
    last_t = 0
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb", buffering=1 << 20) as out:
        out.write(PCAP_GLOBAL)

        def emit_until(limit: float) -> None:
            nonlocal last_t
            while active and active[0][0] <= limit:
                t, o, pkts, idx = active[0]
                _, frame, role = pkts[idx]
                t = max(t, last_t)  # a session never runs back in time; keep the file sorted
                last_t = t
                out.write(RECORD.pack(BASE_TS + t // 1_000_000, t % 1_000_000, len(frame),
                                      len(frame)))
                out.write(frame)
                info.packets += 1
                if role is not None:
                    ports = info.roles.setdefault(role, {})
                    server = ports_of[o]
                    ports[server] = ports.get(server, 0) + 1
                if idx + 1 < len(pkts):
                    heapq.heapreplace(active, (pkts[idx + 1][0], o, pkts, idx + 1))
                else:
                    heapq.heappop(active)
                    del ports_of[o]

        while planned < target:
            t_arrival, i = heapq.heappop(arrivals)
            emit_until(t_arrival)
            kind = spec.kinds[i]
            pkts, server_port = kind.build(rng, pool, int(t_arrival))
            if pkts:
                ports_of[order] = server_port
                planned += len(pkts)
                info.flows += 1
                info.by_kind[kind.name] = info.by_kind.get(kind.name, 0) + len(pkts)
                heapq.heappush(active, (pkts[0][0], order, pkts, 0))
                order += 1
            heapq.heappush(arrivals, (t_arrival + rng.expovariate(rates[i]), i))
        emit_until(math.inf)
    info.seconds = round(last_t / 1e6, 3)
    info.bytes = tmp.stat().st_size
    os.replace(tmp, path)
    return info
