"""The arms: what each engine runs with, made from a snapshot of the pack taken at start
(the files as they are on disk then; others may change them while a run goes on).

Suricata (the pack's rules file and scripts; the rules file's `requires:` picks each
engine's decoder rules):
  none          an empty rules file
  bare-lua      one rule per direction of each protocol of the decoder rules, on their port
                lists, flow and dsize, whose script's match returns 0: what calling a script
                costs on the packets the decoder is offered, without the script's work
  decoder       the decoder rules alone (the rules with `lua:`)
  signatures    the signature rules alone (the rest)
  signatures+bare-lua  the signatures and the bare-lua rules: with `none` -> `signatures` ->
                `signatures+bare-lua` -> `pack`, each step adds one part and the steps add up
  pack          the whole pack
  bundled       the engine's bundled rules (its root's /etc/suricata/rules/*.rules) in one
                file, less those the default suricata.yaml cannot load (app-layer protocols
                whose detection is off by default), as suricata-update leaves them out
  bundled+pack  the bundled rules and the pack in one file: what a drop-in user runs
Snort 3 (the pack's snort3/ files, rendered from the spec):
  none          the pack's snort.lua and option scripts, an empty rules file
  bare-lua      the pack's rules, each option script one whose eval returns false at once
  pack          the pack's files as rendered
  bundled       Snort's own snort.lua (<prefix>/etc/snort: its inspectors and rules), no pack
  bundled+pack  Snort's own snort.lua with the pack's snippet included, and the pack's rules:
                what a user who adds the pack to a stock Snort pays
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ENGINES, ROOT, SNORT3, Engine
from generator import spec as spec_mod
from generator.targets.snort3 import render_snort3
from generator.targets.snort3.render import SNIPPET

Version = tuple[int, int, int]
LUA_KEYWORD = re.compile(r"\blua:\s*([^;]+);")
REQUIRES = re.compile(r"\brequires:\s*([^;]+);")
SID = re.compile(r"\bsid:\s*(\d+)\s*;")
SURICATA_ARMS = ("none", "bare-lua", "decoder", "signatures", "signatures+bare-lua", "pack",
                 "bundled", "bundled+pack")
SNORT_ARMS = ("none", "bare-lua", "pack", "bundled", "bundled+pack")
BARE_SID = 9399900
BARE_LUA_NAME = "cfp2p-bench-bare.lua"
BARE_LUA = """\
-- Benchmark arm: a Lua rule whose script does nothing and never matches.
function init(args)
  return {}
end

function match(args)
  return 0
end
"""
SNORT_EMPTY = "empty.snort"
SNORT_PLUGIN = re.compile(r'^plugin = \{ type = "ips_option", name = "(\w+)"', re.M)
SNORT_BARE = """\
-- Benchmark arm: the option {0} with nothing in it (what Snort's call costs).
plugin = {{ type = "ips_option", name = "{0}", version = 1 }}
function init() return true end
function eval() return false end
"""


@dataclass
class Ruleset:
    """What an engine runs with: files by name, and which of them is the rules file."""

    name: str
    files: dict[str, str]
    rules: str


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

    def digest(self) -> str:
        h = hashlib.sha256(self.rules.encode())
        for name, text in sorted(self.lua.items()):
            h.update(name.encode() + text.encode())
        return h.hexdigest()[:12]


def bare_lua_rules(pack: Pack, version: Version) -> str:
    """The bare-lua arm's rules: one per distinct header of the payload decoder rules (those
    with dsize) an engine of this version loads, keeping their flow and dsize."""
    out, seen = [], set()
    for ln in pack.decoder_lines(version):
        head = ln.split("(", 1)[0].split()[1:]
        if "dsize:" not in ln or tuple(head) in seen:
            continue
        seen.add(tuple(head))
        keep = " ".join(m.group(0) for m in re.finditer(r"\b(flow|dsize):[^;]*;", ln))
        out.append(f'alert {" ".join(head)} (msg:"cfp2p bench: bare Lua call"; {keep} '
                   f"lua:{BARE_LUA_NAME}; sid:{BARE_SID + len(out)}; rev:1;)")
    return "\n".join(out) + "\n"


def suricata_ruleset(name: str, pack: Pack, version: Version,
                     bundled: str | None = None) -> Ruleset:
    if name == "none":
        return Ruleset(name, {"empty.rules": ""}, "empty.rules")
    if name == "bare-lua":
        return Ruleset(name, {"bare.rules": bare_lua_rules(pack, version),
                              BARE_LUA_NAME: BARE_LUA}, "bare.rules")
    if name.startswith("bundled") and bundled is None:
        raise SystemExit(f"arm {name}: the engine's bundled rules were not given")
    decoder = "\n".join(pack.decoder_lines()) + "\n"
    signatures = "\n".join(ln for ln in pack.rule_lines() if not LUA_KEYWORD.search(ln))
    if name == "signatures+bare-lua":
        return Ruleset(name, {"bare.rules": f"{signatures}\n{bare_lua_rules(pack, version)}",
                              BARE_LUA_NAME: BARE_LUA}, "bare.rules")
    texts = {"decoder": decoder, "signatures": signatures + "\n", "pack": pack.rules,
             "bundled": bundled, "bundled+pack": f"{bundled}{pack.rules}"}
    if name not in texts:
        raise SystemExit(f"--arm {name}: Suricata has {', '.join(SURICATA_ARMS)}")
    files = {pack.rules_name: texts[name]}
    if name not in ("signatures", "bundled"):
        files.update(pack.lua)
    return Ruleset(name, files, pack.rules_name)


@dataclass
class SnortPack:
    """A snapshot of the pack's snort3/ files (by name), which of them are the rules and
    the option script."""

    files: dict[str, str]
    rules_name: str
    script: str

    @classmethod
    def render(cls) -> SnortPack:
        spec = spec_mod.load()
        files = render_snort3(spec, spec.options())  # revs from the Snort rev lock
        return cls(
            {Path(k).name: v for k, v in files.items()},
            spec.snort3.rules_file,
            spec.snort3.lua_script,
        )

    def rules(self) -> int:
        return len(rule_lines(self.files[self.rules_name]))

    def digest(self) -> str:
        h = hashlib.sha256()
        for name, text in sorted(self.files.items()):
            h.update(name.encode() + text.encode())
        return h.hexdigest()[:12]


def snort_ruleset(name: str, pack: SnortPack) -> Ruleset:
    if name.startswith("bundled"):
        stock = SNORT3.resolve().parent.parent / "etc" / "snort" / "snort.lua"
        if not stock.exists():
            raise SystemExit(f"arm {name}: no Snort configuration at {stock}")
        if name == "bundled":
            return Ruleset(name, {"snort.lua": f"include '{stock}'\n", SNORT_EMPTY: ""},
                           SNORT_EMPTY)
        config = f"include '{stock}'\ninclude '{SNIPPET}'\n"  # relative: beside snort.lua
        return Ruleset(name, {**pack.files, "snort.lua": config}, pack.rules_name)
    if name == "bare-lua":  # the pack's rules; each option script's eval returns at once
        files = dict(pack.files)
        for script in [n for n, t in files.items() if SNORT_PLUGIN.search(t)]:
            files[script] = SNORT_BARE.format(SNORT_PLUGIN.search(files[script]).group(1))
        return Ruleset(name, files, pack.rules_name)
    if name == "none":
        files = {k: v for k, v in pack.files.items() if k != pack.rules_name}
        return Ruleset(name, {**files, SNORT_EMPTY: ""}, SNORT_EMPTY)
    if name != "pack":
        raise SystemExit(f"--arm {name}: Snort 3 has {', '.join(SNORT_ARMS)}")
    return Ruleset(name, dict(pack.files), pack.rules_name)



def arm_ruleset(engine: str, name: str) -> Ruleset:
    """A named arm of an engine, from the files as they are on disk now."""
    if engine == "snort3":
        return snort_ruleset(name, SnortPack.render())
    eng = next(e for e in ENGINES if e.name == engine)
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    bundled = bundled_rules(eng).text if name.startswith("bundled") else None
    return suricata_ruleset(name, pack, parse_version(eng.version()), bundled)


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
