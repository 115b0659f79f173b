"""The pack as an inline IPS on live traffic (tracker issue 6).

Three network namespaces (netns.py): an infected host sends real UDP datagrams and TCP
sessions, built with the reference codec, through a router whose FORWARD chain hands every
packet to Suricata (`suricata -q N`, NFQUEUE) running the rendered pack, to a peer that
records exactly what arrives (agent.py). Each kind of traffic leaves from its own address of
the infected host, so eve's src_ip tells which kind an alert belongs to, and no source makes
more than a few attempts on Conficker's computed ports (Conficker_P2P_Scan stays silent).

What must hold, on Suricata 7 (host) and 8 (chroot), with and without block_tcp:
- every UDP P2P datagram is dropped (Conficker_P2P_Protection); benign datagrams arrive, also
  one sent on a flow whose P2P datagram was just dropped;
- the TCP P2P session arrives whole and alerts without block_tcp; with block_tcp none of it
  arrives, and every transmission of its segment (the first send, each retransmission the
  sender's kernel reports, and one exact copy the sender sends itself 50 ms later with a
  packet socket: same seq, same bytes) is dropped and reported. The copy goes out in both
  runs: a retransmission is no new message, so Data_Transfer reports the session's data
  transfer once, and Detected without block_tcp once;
- benign TCP sessions arrive whole, on Conficker's computed ports and on other ports;
- eve.json: exact alert counts per rule, source and action, stats ips.blocked equal to the
  packets dropped, every other rule of the pack silent, no Lua error.

test_block_tcp_pipelined: with block_tcp, a session that sends more bytes behind its dropped
message is blocked too (the drop rule matches every later segment of the session)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import netns
import pytest
from engines import ENGINES, Engine, Run

from generator import codec, spec
from generator.codec import FLAG_DATA, FLAG_ENCODED, FLAG_MODE, FLAG_PEER, FLAG_TCP
from generator.targets import common, pack
from generator.traffic.pcaps import message

SPEC = spec.load()
AGENT = Path(__file__).with_name("agent.py")
QUEUE = 7
TCP_WAIT = 1.5  # seconds a sender waits for its TCP data to be acked before giving up

UDP_PROBE = FLAG_ENCODED | FLAG_MODE  # 0x8001
UDP_DATA = UDP_PROBE | FLAG_PEER | FLAG_DATA  # 0x8049
TCP_CONTROL = FLAG_ENCODED | FLAG_TCP | FLAG_MODE  # 0x8005
TCP_DATA = TCP_CONTROL | FLAG_PEER | FLAG_DATA  # 0x804D

# The infected host's addresses, one per kind of traffic; "benign" sends all benign flows.
SOURCES = {
    kind: netns.infected_address(i)
    for i, kind in enumerate(("udp-probe", "udp-data", "tcp-p2p", "benign"))
}
KIND_OF = {address: kind for kind, address in SOURCES.items()}


def dropped(kind: str, block_tcp: bool) -> bool:
    """What the pack promises to drop: every UDP P2P message; TCP ones with block_tcp."""
    return kind in ("udp-probe", "udp-data") or (kind == "tcp-p2p" and block_tcp)


def expected_alerts(block_tcp: bool, tcp_sends: int) -> dict[tuple[str, str, str], int]:
    """(rule "Signature/transport", kind of the source, eve action) -> alerts. UDP alerts are
    limited to one per source (report_interval); the TCP session's Detected alerts once, or
    with block_tcp on each transmission of its segment (tcp_sends), which is dropped; its
    Data_Transfer once, on the first transmission (the others are retransmissions)."""
    tcp = (tcp_sends, "blocked") if block_tcp else (1, "allowed")
    return {
        ("Conficker_P2P_Detected/udp", "udp-probe", "allowed"): 1,
        ("Conficker_P2P_Protection/udp", "udp-probe", "blocked"): 1,
        ("Conficker_P2P_Data_Transfer/udp", "udp-data", "allowed"): 1,
        ("Conficker_P2P_Protection/udp", "udp-data", "blocked"): 1,
        ("Conficker_P2P_Detected/tcp", "tcp-p2p", tcp[1]): tcp[0],
        ("Conficker_P2P_Data_Transfer/tcp", "tcp-p2p", "allowed"): 1,
    }


@dataclass(frozen=True)
class Flow:
    """One UDP socket or TCP connection of the infected host: payloads (kind, bytes) sent in
    order, each as a datagram or segment of its own; for TCP, `resend` exact copies of the
    first segment sent after it (agent.py)."""

    name: str
    proto: str
    src: str
    dport: int
    payloads: tuple[tuple[str, bytes], ...]
    resend: int = 0

    def plan(self) -> dict:
        """As the sender reads it."""
        payloads = [p.hex() for _, p in self.payloads]
        return {
            "name": self.name,
            "proto": self.proto,
            "src": self.src,
            "dport": self.dport,
            "payloads": payloads,
            "resend": self.resend,
        }


def traffic(rng: random.Random, ports: tuple[int, int, int, int], other: int) -> list[Flow]:
    """The flows, in sending order. ports: the peer's (tcpA, udpA, tcpB, udpB) this week;
    other: a high port the decoder inspects (not blacklisted) that is none of them."""
    tcp_a, udp_a, tcp_b, udp_b = ports

    def p2p(flags: int, tcp: bool = False, **blocks) -> bytes:
        msg = message(rng, flags, noise=rng.randrange(0, 41), **blocks)
        return codec.encode_tcp(msg) if tcp else codec.encode(msg)

    def flow(
        name: str, proto: str, kind: str, port: int, *payloads: bytes | tuple, resend: int = 0
    ) -> Flow:
        tagged = tuple(p if isinstance(p, tuple) else (kind, p) for p in payloads)
        return Flow(name, proto, SOURCES[kind.split("/")[0]], port, tagged, resend)

    benign = rng.randbytes
    after_drop = ("benign/udp-after-drop", benign(120))
    session = p2p(TCP_CONTROL, tcp=True) + p2p(TCP_DATA, tcp=True, data=benign(300))
    return [
        flow("probe-a", "udp", "udp-probe", udp_a, p2p(UDP_PROBE)),
        flow("probe-b", "udp", "udp-probe", udp_b, p2p(UDP_PROBE)),
        flow("probe-then-benign", "udp", "udp-probe", udp_a, p2p(UDP_PROBE), after_drop),
        flow("data-transfer", "udp", "udp-data", udp_b, p2p(UDP_DATA, data=benign(400))),
        flow("tcp-session", "tcp", "tcp-p2p", tcp_a, session, resend=1),
        flow("benign-udp-a", "udp", "benign/udp-conficker-port", udp_a, benign(64)),
        flow("benign-udp-b", "udp", "benign/udp-conficker-port", udp_b, b"hello " * 20),
        flow("benign-tcp-b", "tcp", "benign/tcp-conficker-port", tcp_b, benign(900), b"GET /"),
        flow("benign-udp-53", "udp", "benign/other-port", 53, benign(40)),
        flow("benign-udp-high", "udp", "benign/other-port", other, benign(500)),
        flow("benign-tcp-80", "tcp", "benign/other-port", 80, b"GET / HTTP/1.1\r\n\r\n"),
        flow("benign-tcp-high", "tcp", "benign/other-port", other, benign(1000), benign(30)),
    ]


def rule_names(opts: spec.Options) -> dict[int, str]:
    """sid -> "Signature/transport" for every rule of the pack, decoder rules included."""
    names = {
        spec.rule_sid(opts, r): f"{s.name}/{r.transport}" for s in SPEC.signatures for r in s.rules
    }
    decoders = {spec.rule_sid(opts, d): f"decoder/{d.transport}" for d in SPEC.decoder.rules}
    return names | decoders


def other_port(ports: tuple[int, ...]) -> int:
    return next(p for p in range(40000, 65536) if p not in ports and not codec.is_blacklisted(p))


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in read(path).splitlines()]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=ENGINES, ids=lambda e: e.name)
def engine(request) -> Engine:
    eng: Engine = request.param
    wanted = request.config.getoption("--engine")
    if wanted and eng.name not in wanted:
        pytest.skip(f"--engine {','.join(wanted)} given")
    missing = netns.missing_tools()
    if os.geteuid() != 0 or missing:
        pytest.skip(
            f"live inline test needs root and {', '.join(netns.TOOLS)} "
            f"(uid {os.geteuid()}, missing: {', '.join(missing) or 'none'}; "
            "`make netns-tools` installs them)"
        )
    if not eng.available():
        pytest.fail(f"{eng.name} is not installed: run `make engines`")
    return eng


@dataclass
class Inline:
    proc: subprocess.Popen
    work: Path

    def finish(self) -> Run:
        """Stop Suricata (it writes its final stats) and return what it wrote."""
        netns.stop(self.proc, signal.SIGINT, timeout=60)
        log = read(self.work / "console.log") + read(self.work / "suricata.log")
        assert self.proc.returncode == 0, f"Suricata exited {self.proc.returncode}: {log[-3000:]}"
        return Run(records(self.work / "eve.json"), log)


@contextmanager
def inline_suricata(
    engine: Engine,
    net: netns.Topology,
    rules: Path,
    lua: Path,  # a script, or their folder
) -> Iterator[Inline]:
    """Suricata on the router's NFQUEUE with the pack (staged as the pcap tests stage it),
    ready to judge packets on entry, stopped and its folder removed on exit."""
    work = engine._stage({rules.name: rules, lua.name: lua})
    args = [
        "-q",
        str(net.queue),
        "-S",
        engine._inside(work / "rules" / rules.name),
        "-l",
        engine._inside(work),
        *engine._settings(work / "rules"),
        "--set",
        "unix-command.enabled=no",
    ]
    logs = (work / "console.log", work / "suricata.log")
    try:
        with netns.process(net.run_in(net.router, engine._cmd(args)), logs[0]) as proc:
            wait_for(
                lambda: proc.poll() is not None or "Engine started" in read(logs[1]),
                90,
                "Suricata to start",
            )
            assert proc.poll() is None, read(logs[0]) + read(logs[1])
            yield Inline(proc, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the test ------------------------------------------------------------------------------


def exchange(
    net: netns.Topology, flows: list[Flow], block_tcp: bool, tmp: Path
) -> tuple[dict[str, dict], list[dict]]:
    """Run the receiver (peer) and the sender (infected host); return what the sender
    reports per flow (its source port, TCP outcome and retransmissions) and what arrived."""
    plan, sent, arrived = tmp / "plan.json", tmp / "sent.jsonl", tmp / "arrived.jsonl"
    plan.write_text(
        json.dumps(
            {
                "address": netns.PEER,
                "peer": netns.PEER,
                "lifetime": 120,
                "iface": "eth0",  # the link of every namespace (netns.py)
                "tcp_wait": TCP_WAIT,
                "udp_ports": sorted({f.dport for f in flows if f.proto == "udp"}),
                "tcp_ports": sorted({f.dport for f in flows if f.proto == "tcp"}),
                "flows": [f.plan() for f in flows],
            }
        )
    )
    agent = [sys.executable, str(AGENT)]
    receive = net.run_in(net.peer, [*agent, "receive", str(plan), str(arrived)])
    with netns.process(receive, tmp / "receiver.out") as receiver:
        wait_for(
            lambda: receiver.poll() is not None or "ready" in read(tmp / "receiver.out"),
            20,
            "the receiver",
        )
        assert receiver.poll() is None, read(tmp / "receiver.out")
        sender = subprocess.run(
            net.run_in(net.infected, [*agent, "send", str(plan), str(sent)]),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert sender.returncode == 0, sender.stdout + sender.stderr
        due = Counter(
            p.hex()
            for f in flows
            if f.proto == "udp"
            for kind, p in f.payloads
            if not dropped(kind, block_tcp)
        )
        wait_for(
            lambda: due <= Counter(r.get("data") for r in records(arrived)),
            5,
            "the datagrams that should arrive",
        )
        time.sleep(0.3)  # whatever wrongly got through has arrived by now too
    return {r["name"]: r for r in records(sent)}, records(arrived)


def compare(
    flows: list[Flow], sent: dict[str, dict], arrived: list[dict], block_tcp: bool
) -> tuple[Counter, list[str]]:
    """Per kind, payloads sent and received; and every difference from what should arrive.
    A TCP flow counts as received only when all its bytes arrived."""
    udp_in = Counter(
        (r["src"], r["sport"], r["dport"], r["data"]) for r in arrived if r["proto"] == "udp"
    )
    tcp_in: dict[tuple[str, int], bytes] = {}
    for r in (r for r in arrived if r["proto"] == "tcp"):
        key = (r["src"], r["sport"])
        tcp_in[key] = tcp_in.get(key, b"") + bytes.fromhex(r.get("data", ""))
    tally: Counter = Counter()
    wrong = []
    for f in flows:
        out = sent[f.name]
        if f.proto == "udp":
            for kind, payload in f.payloads:
                got = udp_in.pop((f.src, out["sport"], f.dport, payload.hex()), 0)
                tally[kind, "sent"] += 1
                tally[kind, "received"] += got
                if got != (0 if dropped(kind, block_tcp) else 1):
                    wrong.append(f"{f.name}: {kind} datagram arrived {got} times")
            continue
        (kind,) = {kind for kind, _ in f.payloads}
        whole = b"".join(p for _, p in f.payloads)
        got = tcp_in.pop((f.src, out["sport"]), b"")
        tally[kind, "sent"] += len(f.payloads)
        tally[kind, "received"] += len(f.payloads) if got == whole else 0
        want = (b"", "stalled") if dropped(kind, block_tcp) else (whole, "delivered")
        if (got, out["outcome"]) != want:
            wrong.append(f"{f.name}: {len(got)} of {len(whole)} bytes arrived, sender: {out}")
    wrong += [f"unexpected datagram {k}" for k in udp_in]
    wrong += [f"unexpected TCP connection {k}" for k in tcp_in]
    return tally, wrong


def run_inline(
    engine: Engine, opts: spec.Options, flows: list[Flow], tmp: Path
) -> tuple[dict[str, dict], list[dict], Run]:
    """Render the pack, build the namespaces, start Suricata inline, send the flows."""
    common.write_tree(pack.render(SPEC, opts), tmp / "pack")
    rules = tmp / "pack" / "rules" / SPEC.pack.rules_file
    lua = tmp / "pack" / "lua"  # every engine's script
    with (
        netns.topology(QUEUE, len(SOURCES)) as net,
        inline_suricata(engine, net, rules, lua) as ips,
    ):
        sent, arrived = exchange(net, flows, opts.block_tcp, tmp)
        return sent, arrived, ips.finish()


def this_week() -> tuple[int, int, int, int]:
    return codec.ports(netns.PEER, codec.epoch_week(time.time()))


@pytest.mark.parametrize("block_tcp", [False, True], ids=["default", "block_tcp"])
def test_inline(engine: Engine, block_tcp: bool, tmp_path: Path) -> None:
    opts = SPEC.options(block_tcp=block_tcp)
    ports = this_week()
    flows = traffic(random.Random(f"{engine.name}-{block_tcp}"), ports, other_port(ports))
    sent, arrived, run = run_inline(engine, opts, flows, tmp_path)

    tally, wrong = compare(flows, sent, arrived, block_tcp)
    tcp_sends = 1 + sent["tcp-session"]["retransmissions"] + sent["tcp-session"]["resent"]
    assert sent["tcp-session"]["resent"] == 1, "the sender's own copy of the segment"
    names = rule_names(opts)
    alerts = Counter(
        (
            names.get(a["alert"]["signature_id"], str(a["alert"]["signature_id"])),
            KIND_OF.get(a["src_ip"], a["src_ip"]),
            a["alert"]["action"],
        )
        for a in run.alerts
    )
    drops = tally["udp-probe", "sent"] + tally["udp-data", "sent"]
    drops += tcp_sends if block_tcp else 0
    ips_stats = run.stats.get("ips", {})

    print(f"\n{engine.name}, block_tcp={block_tcp}: the TCP P2P segment went out {tcp_sends}x")
    print(f"  (kernel retransmissions {sent['tcp-session']['retransmissions']}, copies 1)")
    for kind in sorted({k for k, _ in tally}):
        print(f"  {kind:32} sent {tally[kind, 'sent']:2}  received {tally[kind, 'received']:2}")
    print(f"  stats ips: accepted {ips_stats.get('accepted')}, blocked {ips_stats.get('blocked')}")
    for (rule, kind, action), n in sorted(alerts.items()):
        print(f"  alert {rule:32} from {kind:10} {action:8} x{n}")

    assert wrong == [], "what arrived at the peer"
    assert dict(alerts) == expected_alerts(block_tcp, tcp_sends), "alerts (rule, source, action)"
    assert ips_stats.get("blocked") == drops, "packets dropped (stats ips.blocked)"
    assert ips_stats.get("drop_reason", {}).get("rules") == drops, "packets dropped by rules"
    assert run.lua_problems(engine) == []


def test_block_tcp_pipelined(engine: Engine, tmp_path: Path) -> None:
    """With block_tcp, a session whose control message is followed by more bytes before the
    peer has acked it (here 130 plain bytes 20 ms later) must not get through either."""
    rng = random.Random(f"pipelined-{engine.name}")
    msg = codec.encode_tcp(message(rng, TCP_CONTROL))
    more = b"benign after " * 10  # read as a frame length of 0x6562 bytes: it never completes
    flows = [
        Flow(
            "tcp-session",
            "tcp",
            SOURCES["tcp-p2p"],
            this_week()[0],
            (("tcp-p2p", msg), ("tcp-p2p", more)),
        )
    ]
    sent, arrived, run = run_inline(engine, SPEC.options(block_tcp=True), flows, tmp_path)
    detected = [a for a in run.alerts if a["alert"]["action"] == "blocked"]
    assert detected, "the message's first transmission is dropped and reported"
    assert compare(flows, sent, arrived, True)[1] == [], "nothing of the session arrives"
    # the message and the bytes behind it, each at least once
    assert run.stats.get("ips", {}).get("blocked", 0) >= 2
    assert len({a["pcap_cnt"] if "pcap_cnt" in a else a["timestamp"] for a in detected}) >= 2
