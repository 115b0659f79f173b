"""What the benchmark reads from a rules file: which rules an engine loads (`requires:`),
and which packets each decoder rule (a rule with a `lua:` keyword) selects.

A decoder rule is modelled by its protocol, the listener (server) ports its header admits,
the roles (bench.inputs.ROLES) its flow direction and flags select, and the per-flow
flowint tests (`flowint:NAME,notset` / `isset`) it makes before its script runs. What is
not modelled (negated or variable ports, a client port list, other flags) makes
`selectors` return None."""

from __future__ import annotations

import re
from dataclasses import dataclass

LUA_KEYWORD = re.compile(r"\blua:\s*([^;]+);")
REQUIRES = re.compile(r"\brequires:\s*([^;]+);")
SID = re.compile(r"\bsid:\s*(\d+)\s*;")
S2C_ROLES = frozenset({"udp/s2c", "tcp/s2c", "tcp/synack"})


def parse_version(text: str) -> tuple[int, int, int]:
    parts = [int(x) for x in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def admits(line: str, version: tuple[int, int, int] | None) -> bool:
    """Whether an engine of this version loads the rule: its `requires: version ...`
    conditions (e.g. `requires: version >= 7 < 8;`) all hold. None admits every rule.
    Other requirements (features) are taken as met."""
    m = REQUIRES.search(line)
    if m is None or version is None:
        return True
    for part in m.group(1).split(","):
        part = part.strip()
        if not part.startswith("version"):
            continue
        for op, v in re.findall(r"(>=|<=|>|<|=)\s*([\d.]+)", part):
            want = parse_version(v)
            ok = {">=": version >= want, "<=": version <= want, ">": version > want,
                  "<": version < want, "=": version == want}[op]
            if not ok:
                return False
    return True


def rule_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def sid_of(line: str) -> int | None:
    m = SID.search(line)
    return int(m.group(1)) if m else None


def ports(spec: str) -> frozenset[int] | None:
    """A rule header's port spec as a set; None for `any`. Raises ValueError on what this
    does not model (negation, variables)."""
    if spec == "any":
        return None
    out: set[int] = set()
    for item in spec.strip("[]").split(","):
        if not re.fullmatch(r"\d*:?\d*", item) or item in ("", ":"):
            raise ValueError(f"port spec {spec!r}")
        if ":" in item:
            lo, hi = item.split(":")
            out.update(range(int(lo or 0), int(hi or 65535) + 1))
        else:
            out.add(int(item))
    return frozenset(out)


@dataclass(frozen=True)
class Selector:
    """The packets one decoder rule runs its script on."""

    sid: int
    script: str
    proto: str
    roles: tuple[str, ...]
    server: frozenset[int] | None  # listener ports, None for any
    tests: tuple[tuple[str, bool], ...]  # (flowint, must be set) tested before the script

    def selects(self, role: str, server_port: int) -> bool:
        return role in self.roles and (self.server is None or server_port in self.server)

    def admits_state(self, flowints: dict) -> bool:
        return all((flowints.get(name) is not None) == must for name, must in self.tests)


def selector(line: str) -> Selector | None:
    try:
        _, proto, _, sport, _, _, dport, opts = line.split(None, 7)
        sports, dports = ports(sport), ports(dport)
    except ValueError:
        return None
    flow = re.search(r"\bflow:\s*([^;]+);", opts)
    dirs = set(flow.group(1).replace(" ", "").split(",")) if flow else set()
    flags = re.search(r"\bflags:\s*([^;,]+)", opts)
    sid, lua = sid_of(line), LUA_KEYWORD.search(line)
    if proto not in ("udp", "tcp") or sid is None or lua is None:
        return None
    if flags:
        letters = set(flags.group(1).strip()) - set("+*!")
        if proto != "tcp" or letters not in ({"S"}, {"S", "A"}):
            return None
        roles = ["tcp/syn" if letters == {"S"} else "tcp/synack"]
    else:
        roles = []
        if not dirs & {"to_client", "from_server"}:
            roles.append(f"{proto}/c2s")
        if not dirs & {"to_server", "from_client"}:
            roles.append(f"{proto}/s2c")
    # the listener is the destination for client-to-server roles, the source otherwise
    servers = {(dports, sports) if r not in S2C_ROLES else (sports, dports) for r in roles}
    if len(servers) != 1:  # both directions with different port lists: not modelled
        return None
    server, client = servers.pop()
    if client is not None:
        return None
    tests = tuple((name, op == "isset") for name, op in re.findall(
        r"\bflowint:\s*([\w.]+)\s*,\s*(notset|isnotset|isset)\s*;", opts))
    return Selector(sid, lua.group(1).strip(), proto, tuple(roles), server, tests)


def selectors(lines: list[str]) -> list[Selector] | None:
    out = [selector(ln) for ln in lines]
    return None if any(s is None for s in out) else out  # type: ignore[return-value]
