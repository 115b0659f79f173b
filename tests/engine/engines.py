"""The Suricata engines the harness runs: 7.0 on the host, 8.0 in a Debian 13 chroot.

An engine reads a pcap with a rendered ruleset and returns what it wrote: eve events,
the final stats and its log. Cases never depend on which engine ran them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROOT8 = Path(os.environ.get("CFP2P_SURICATA8_ROOT", ROOT / ".cache" / "suricata8"))


# Suricata 8's counters of Lua errors (stats detect.lua); Suricata 7 only logs them.
LUA_COUNTERS = (
    "errors",
    "blocked_function_errors",
    "instruction_limit_errors",
    "memory_limit_errors",
)


def lua_problems(major: int, log: str, stats: dict) -> list[str]:
    """What a run says went wrong in Lua: log lines about Lua errors or warnings, and
    (Suricata 8, where the counters must be there) non-zero detect.lua counters."""
    problems = [
        line
        for line in log.splitlines()
        if re.search(r"lua", line, re.I) and re.search(r"error|warn", line, re.I)
    ]
    counters = stats.get("detect", {}).get("lua", {})
    if major >= 8 and not set(LUA_COUNTERS) <= set(counters):
        problems.append(f"no Lua counters in stats: {counters}")
    problems += [f"stats detect.lua.{k} = {counters[k]}" for k in LUA_COUNTERS if counters.get(k)]
    return problems


@dataclass
class Run:
    events: list[dict]
    log: str

    @property
    def alerts(self) -> list[dict]:
        return [e for e in self.events if e.get("event_type") == "alert"]

    @property
    def stats(self) -> dict:
        stats = [e["stats"] for e in self.events if e.get("event_type") == "stats"]
        return stats[-1] if stats else {}

    def lua_problems(self, engine: Engine) -> list[str]:
        return lua_problems(engine.major, self.log, self.stats)


@dataclass(frozen=True)
class Engine:
    name: str
    major: int
    root: Path | None  # chroot, or None for the host

    def available(self) -> bool:
        binary = (self.root or Path("/")) / "usr/bin/suricata"
        return binary.exists()

    def _cmd(self, args: list[str]) -> list[str]:
        base = ["chroot", str(self.root), "suricata"] if self.root else ["suricata"]
        return base + args

    def _workdir(self) -> Path:
        parent = (self.root / "tmp") if self.root else None
        return Path(tempfile.mkdtemp(prefix="cfp2p-", dir=parent))

    def _inside(self, path: Path) -> str:
        """A host path as the engine sees it."""
        return "/" + str(path.relative_to(self.root)) if self.root else str(path)

    def _settings(self, ruledir: Path) -> list[str]:
        settings = [
            f"default-rule-path={self._inside(ruledir)}",
            "security.lua.allow-rules=true",
            "logging.outputs.1.file.enabled=yes",
        ]
        return [x for s in settings for x in ("--set", s)]

    def version(self) -> str:
        out = subprocess.run(self._cmd(["-V"]), capture_output=True, text=True, check=True)
        return out.stdout.strip().split("version ")[-1].split()[0]

    def _stage(self, files: dict[str, Path]) -> Path:
        """Copy the files into a fresh rules folder. A folder given as `lua` stands for
        every Lua script in it (the pack's scripts lie beside the rules file)."""
        work = self._workdir()
        (work / "rules").mkdir()
        for name, src in files.items():
            if src.is_dir():
                for f in sorted(src.glob("*.lua")):
                    shutil.copy(f, work / "rules" / f.name)
            else:
                shutil.copy(src, work / "rules" / name)
        return work

    def test_config(self, rules: Path, lua: Path) -> tuple[int, str]:
        """`suricata -T` on the ruleset: exit status and log. `lua`: a script, or a
        folder of them."""
        work = self._stage({rules.name: rules, lua.name: lua})
        try:
            proc = subprocess.run(
                self._cmd(
                    [
                        "-T",
                        "-S",
                        self._inside(work / "rules" / rules.name),
                        "-l",
                        self._inside(work),
                        *self._settings(work / "rules"),
                    ]
                ),
                capture_output=True,
                text=True,
                timeout=120,
            )
            return proc.returncode, proc.stdout + proc.stderr + self._log(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _log(work: Path) -> str:
        log = work / "suricata.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def read_pcap(self, pcap: Path, rules: Path, lua: Path, ips: bool = False) -> Run:
        work = self._stage({rules.name: rules, lua.name: lua, pcap.name: pcap})
        try:
            args = [
                "-r",
                self._inside(work / "rules" / pcap.name),
                "-S",
                self._inside(work / "rules" / rules.name),
                "-l",
                self._inside(work),
                "-k",
                "none",
                "--runmode",
                "single",
                *self._settings(work / "rules"),
            ]
            if ips:
                args.append("--simulate-ips")
            proc = subprocess.run(self._cmd(args), capture_output=True, text=True, timeout=300)
            log = proc.stdout + proc.stderr + self._log(work)
            if proc.returncode != 0:
                raise RuntimeError(f"{self.name} failed on {pcap.name}: {log[-2000:]}")
            eve = work / "eve.json"
            events = (
                [json.loads(line) for line in eve.read_text().splitlines()] if eve.exists() else []
            )
            return Run(events, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)


ENGINES = [Engine("suricata7", 7, None), Engine("suricata8", 8, CHROOT8)]
