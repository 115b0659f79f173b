"""The arms: what Suricata runs with, each a rules folder staged next to the engine.

  none          an empty rules file: the baseline
  none-b        the same empty rules file again, in its own folder: the A/A arm; how far
                none-b/none strays from 1 is the noise floor
  pack          the pack's rules and Lua script(s), copied once at start (a snapshot: Pack)
  bundled       the engine's bundled rules (/etc/suricata/rules/*.rules of the engine's own
                root) in one file, less the rules the default suricata.yaml cannot load
                (app-layer protocols whose detection is off by default), as suricata-update
                leaves them out
  bundled+pack  the bundled rules and the pack in one file: what a drop-in user runs
  count         untimed: the decoder rules only, turned into alerts whose script runs the
                decoder and then returns 1, thresholded to one alert per rule; matches =
                detect.alert + detect.alerts_suppressed = decoder invocations
  detect-on     profile: one rule for UDP port 9 (detection on, nothing to inspect)
  signatures    profile: the pack without its decoder rules
  rules-only    profile: the pack with each decoder rule's `lua:` replaced by a never-set
                flowbit (the rules' header/flow/dsize/flowint work without any Lua)
  lua-noop      profile: the decoder rules call a script that asks for no buffer and
                returns 0 (Suricata's own cost of a Lua call)

Also which arms run on which input (MAIN_ARMS, BUNDLED_ARMS, PROFILE_ARMS), the decoder
invocations an input implies for the pack's rules, and which commit the snapshot is.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import inputs
from bench.harness import ROOT, Engine
from bench.rulemodel import LUA_KEYWORD, admits, rule_lines, selectors, sid_of

Version = tuple[int, int, int]

MAIN_ARMS = ["none", "none-b", "pack"]
BUNDLED_ARMS = ["bundled", "bundled+pack"]
BUNDLED_INPUTS = {"mix"}  # where bundled and bundled+pack run
PROFILE_ARMS = ["none", "detect-on", "signatures", "rules-only", "lua-noop", "pack"]
PROFILE_SKIP = {"mix"}  # profiled elsewhere: every input but these

NOOP_LUA = """\
-- Benchmark arm: a decoder rule's Lua call with nothing in it. Like the pack's
-- script it asks for no buffer, so Suricata calls it on the same packets.
function init(args)
  return {}
end

function match(args)
  return 0
end
"""
NOOP_NAME = "cfp2p-bench-noop.lua"
# One rule for a port nothing uses: detection is switched on, nothing is inspected.
DETECT_ON_RULE = ('alert udp any any -> any 9 (msg:"cfp2p bench: detection on"; '
                  'content:"cfp2p-bench-never"; sid:9399999; rev:1;)\n')


@dataclass
class Arm:
    name: str
    files: dict[str, bytes]
    rules: str  # name of the rules file among files


@dataclass
class Pack:
    """A snapshot of the pack: one rules file and the Lua script(s) it names."""

    rules_name: str
    rules: str
    lua: dict[str, str]

    @classmethod
    def load(cls, rules_dir: Path, lua_dir: Path) -> Pack:
        rules_files = sorted(rules_dir.glob("*.rules"))
        if len(rules_files) != 1:
            raise SystemExit(f"expected one rules file in {rules_dir}, found {rules_files}")
        text = rules_files[0].read_text()
        lua = {}
        for name in sorted({n.strip() for n in LUA_KEYWORD.findall(text)}):
            path = lua_dir / name
            if not path.exists():
                raise SystemExit(f"{rules_files[0]} names {name}, which is not in {lua_dir}")
            lua[path.name] = path.read_text()
        return cls(rules_files[0].name, text, lua)

    def rule_lines(self, version: Version | None = None) -> list[str]:
        """The rules; with a version, those an engine of that version loads."""
        return [ln for ln in rule_lines(self.rules) if admits(ln, version)]

    def decoder_lines(self, version: Version | None = None) -> list[str]:
        return [ln for ln in self.rule_lines(version) if LUA_KEYWORD.search(ln)]

    def skipped(self, version: Version) -> int:
        """Rules an engine of this version skips (their `requires:` does not admit it)."""
        return len(self.rule_lines()) - len(self.rule_lines(version))

    def scripts(self, version: Version | None = None) -> dict[str, str]:
        """The scripts the decoder rules an engine loads name."""
        names = {LUA_KEYWORD.search(ln).group(1).strip() for ln in self.decoder_lines(version)}
        return {n: self.lua[n] for n in sorted(names)}

    def digest(self) -> str:
        h = hashlib.sha256(self.rules.encode())
        for name, text in sorted(self.lua.items()):
            h.update(name.encode() + text.encode())
        return h.hexdigest()[:12]

    def _with_rules(self, name: str, rules: str, lua: dict[str, str] | None = None) -> Arm:
        files = {self.rules_name: rules.encode()}
        files.update({k: v.encode() for k, v in (self.lua if lua is None else lua).items()})
        return Arm(name, files, self.rules_name)

    def _map_decoders(self, fn) -> str:  # noqa: ANN001 - str -> str
        return "\n".join(fn(ln) if LUA_KEYWORD.search(ln) else ln
                         for ln in self.rules.splitlines()) + "\n"

    def arms(self, bundled: str | None = None) -> dict[str, Arm]:
        """The arms; with the engine's bundled rules (one text), also bundled and
        bundled+pack."""
        count_lua = {}
        for name, text in self.lua.items():  # every script a `lua:` keyword names
            if len(re.findall(r"^function match\(args\)", text, re.M)) != 1:
                raise SystemExit(f"{name}: no single `function match(args)` to instrument")
            count_lua[name] = (
                re.sub(r"^function match\(args\)", "local function cfp2p_bench_match(args)",
                       text, flags=re.M)
                + "\nfunction match(args)\n  cfp2p_bench_match(args)\n  return 1\nend\n")

        def counting(line: str) -> str:
            line = re.sub(r"^(pass|drop|reject|alert)\s", "alert ", line)
            line = re.sub(r"\s*\bnoalert;", "", line)
            line = re.sub(r"\s*\bthreshold:[^;]*;", "", line)
            return re.sub(r"\bsid:", "threshold:type limit, track by_rule, count 1, "
                          "seconds 86400; sid:", line, count=1)

        # every decoder rule, `requires:` kept: each engine counts the ones it loads
        count_rules = "\n".join(counting(ln) for ln in self.decoder_lines()) + "\n"
        signatures = "\n".join(ln for ln in self.rules.splitlines()
                               if not LUA_KEYWORD.search(ln)) + "\n"
        empty = {"empty.rules": b""}
        arms = {
            "none": Arm("none", dict(empty), "empty.rules"),
            "none-b": Arm("none-b", dict(empty), "empty.rules"),
            "detect-on": Arm("detect-on", {"detect-on.rules": DETECT_ON_RULE.encode()},
                             "detect-on.rules"),
            "signatures": self._with_rules("signatures", signatures, {}),
            "pack": self._with_rules("pack", self.rules),
            "count": self._with_rules("count", count_rules, count_lua),
            "rules-only": self._with_rules("rules-only", self._map_decoders(
                lambda ln: LUA_KEYWORD.sub("flowbits:isset,cfp2p.bench.never;", ln)), {}),
            "lua-noop": self._with_rules("lua-noop", self._map_decoders(
                lambda ln: LUA_KEYWORD.sub(f"lua:{NOOP_NAME};", ln)), {NOOP_NAME: NOOP_LUA}),
        }
        if bundled is not None:
            arms["bundled"] = Arm("bundled", {"bundled.rules": bundled.encode()}, "bundled.rules")
            arms["bundled+pack"] = self._with_rules("bundled+pack", bundled + self.rules)
        return arms


STATE_TEST = re.compile(r"\b(flowint:\s*[\w.]+\s*,\s*(isset|notset|isnotset|==|!=|<=|>=|<|>)"
                        r"|flowbits:\s*(isset|isnotset)|xbits:)")


def stateful(pack: Pack, version: Version | None = None) -> bool:
    """True when a decoder rule also tests per-flow state (flowints, flowbits) that the
    script sets: the input then gives only an upper bound of the invocations."""
    return any(STATE_TEST.search(ln) for ln in pack.decoder_lines(version))


def predict_invocations(pack: Pack, info: inputs.InputInfo,
                        version: Version | None = None) -> int | None:
    """Decoder invocations the input implies: for each decoder rule an engine of this
    version loads (all with None), the packets of the roles its protocol, flow direction
    and flags select whose server port its header admits. None when a rule uses something
    not modelled here (bench.rulemodel)."""
    sels = selectors(pack.decoder_lines(version))
    if sels is None:
        return None
    return sum(n for sel in sels for role in sel.roles
               for port, n in info.roles.get(role, {}).items()
               if sel.server is None or port in sel.server)


# --- the engine's bundled rules ----------------------------------------------------------------


@dataclass
class Bundled:
    text: str
    files: int
    rules: int  # rules kept
    left_out: Counter  # protocol -> rules the default configuration cannot load


def bundled_rules(eng: Engine) -> Bundled:
    """The engine's bundled rules in one text, less those `suricata -T` refuses with the
    default suricata.yaml (detection for their app-layer protocol is off by default)."""
    files = sorted(((eng.root or Path("/")) / "etc/suricata/rules").glob("*.rules"))
    # one rule per line: join the lines a trailing backslash continues
    text = re.sub(r"\\\n", "", "".join(f.read_text() + "\n" for f in files))
    left_out: Counter = Counter()
    for attempt in range(2):
        rc, log = _test_rules(eng, text)
        bad = {int(m) for m in re.findall(r'error parsing signature ".*?\bsid:\s*(\d+);', log)}
        if rc == 0 and not bad:
            break
        if attempt or not bad:
            raise SystemExit(f"{eng.name}: the bundled rules do not load: {log[-2000:]}")
        keep = []
        for ln in text.splitlines():
            if ln.strip() and not ln.lstrip().startswith("#") and sid_of(ln) in bad:
                left_out[ln.split()[1]] += 1
            else:
                keep.append(ln)
        text = "\n".join(keep) + "\n"
    return Bundled(text, len(files), len(rule_lines(text)), left_out)


def _test_rules(eng: Engine, text: str) -> tuple[int, str]:
    work = eng._workdir()
    try:
        (work / "bundled.rules").write_text(text)
        proc = subprocess.run(
            eng._cmd(["-T", "-S", eng._inside(work / "bundled.rules"), "-l", eng._inside(work),
                      *eng._settings(work)]), capture_output=True, text=True, timeout=300)
        log = proc.stdout + proc.stderr
        if (work / "suricata.log").exists():
            log += (work / "suricata.log").read_text(errors="replace")
        return proc.returncode, log
    finally:
        shutil.rmtree(work, ignore_errors=True)



def pack_version(pack: Pack | None = None) -> str:
    """Which commit the snapshot is: the latest of the last 40 commits touching rules/ and
    lua/ whose files give the snapshot's digest (the pack may change while a run goes on)."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    if pack is not None:
        for commit in git("log", "-40", "--format=%h", "--", "rules", "lua").split():
            files = git("ls-tree", "--name-only", commit, "rules/", "lua/").split()
            rules = [f for f in files if f.endswith(".rules")]
            if len(rules) != 1:
                continue
            lua = {Path(f).name: git("show", f"{commit}:{f}") + "\n" for f in files
                   if f.endswith(".lua") and Path(f).name in pack.lua}
            old = Pack(Path(rules[0]).name, git("show", f"{commit}:{rules[0]}") + "\n", lua)
            if old.digest() == pack.digest():
                return f"rules/ and lua/ as of commit {commit}"
        return "rules/ and lua/ as in the working tree, matching none of the last 40 commits"
    commit = git("log", "-1", "--format=%h", "--", "rules", "lua") or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "rules",
                            "lua"]).returncode
    return f"last commit touching rules/ lua/: {commit}" + (
        "; the working tree differs from it" if dirty else "")


# --- the counted arms (bench.count) ------------------------------------------------------------


@dataclass
class Ruleset:
    """What an engine runs with: files by name, and which of them is the rules file."""

    name: str
    files: dict[str, str]
    rules: str


SURICATA_ARMS = ("none", "bare-lua", "decoder", "signatures", "pack", "bundled", "bundled+pack")
SNORT_ARMS = ("none", "bare-lua", "pack")
BARE_SID = 9399900


def bare_lua_rules(pack: Pack, version: Version) -> str:
    """One rule per direction of each protocol of the decoder rules an engine of this
    version loads, on their port lists, flow and dsize, calling a script that returns 0:
    what a Lua call costs the engine on the packets the decoder is offered, without the
    decoder's work."""
    out, seen = [], set()
    for ln in pack.decoder_lines(version):
        if "dsize:" not in ln:  # the SYN / SYN-ACK rules: no payload
            continue
        head = ln.split("(", 1)[0].strip()
        proto = head.split()[1]
        if (proto, head) in seen:
            continue
        seen.add((proto, head))
        keep = [m.group(0) for m in re.finditer(r"\b(flow|dsize):[^;]*;", ln)]
        out.append(f'alert {" ".join(head.split()[1:])} (msg:"cfp2p bench: bare Lua call"; '
                   f'{" ".join(keep)} lua:{NOOP_NAME}; sid:{BARE_SID + len(out)}; rev:1;)')
    return "\n".join(out) + "\n"


def suricata_ruleset(name: str, pack: Pack, version: Version,
                     bundled: str | None = None) -> Ruleset:
    lua = {**pack.lua}
    decoder = "\n".join(pack.decoder_lines()) + "\n"
    signatures = "\n".join(ln for ln in pack.rule_lines() if not LUA_KEYWORD.search(ln)) + "\n"
    if name == "none":
        return Ruleset(name, {"empty.rules": ""}, "empty.rules")
    if name == "bare-lua":
        return Ruleset(name, {"bare.rules": bare_lua_rules(pack, version), NOOP_NAME: NOOP_LUA},
                       "bare.rules")
    if name in ("bundled", "bundled+pack") and bundled is None:
        raise SystemExit(f"arm {name}: the engine's bundled rules were not given")
    texts = {"decoder": decoder, "signatures": signatures, "pack": pack.rules,
             "bundled": bundled, "bundled+pack": f"{bundled}{pack.rules}"}
    if name not in texts:
        raise SystemExit(f"--arm {name}: not one of {', '.join(SURICATA_ARMS)}")
    files = {pack.rules_name: texts[name]}
    if name not in ("signatures", "bundled"):
        files.update(lua)
    return Ruleset(name, files, pack.rules_name)


def arm_ruleset(engine: str, name: str) -> Ruleset:
    """A named arm of an engine, from the files as they are on disk now."""
    from bench.harness import ENGINES
    from bench.rulemodel import parse_version

    if engine == "snort3":
        from bench.snort import SnortPack, snort_ruleset
        return snort_ruleset(name, SnortPack.render())
    eng = next(e for e in ENGINES if e.name == engine)
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    bundled = bundled_rules(eng).text if name.startswith("bundled") else None
    return suricata_ruleset(name, pack, parse_version(eng.version()), bundled)
