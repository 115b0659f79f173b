"""Snort 3 for the engine cases: the pack's snort3/ files on a pcap, inline (-Q with the
dump DAQ, which writes the packets let through) or not, alerts as JSON lines. Two ways to
configure it: the pack's standalone snort.lua, or (`stock`) Snort's own snort.lua with the
pack's snippet included, as README tells an operator to load it.

Found through SNORT3 (default ../shared/snort3/bin/snort). Its runtime libraries come
from Debian (scripts/install-snort3.sh). Snort reports a Lua error in an option as
`<script>:<line>: <message>` and still exits 0, so every run's output is searched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dpkt

ROOT = Path(__file__).resolve().parents[2]
SNORT3 = Path(os.environ.get("SNORT3", ROOT.parent / "shared" / "snort3" / "bin" / "snort"))
HOW_TO = (
    "Snort 3 not found at {path}: set SNORT3 to a Snort 3 binary (a build is in "
    "../shared/snort3, see its README) and run `make snort3` for its runtime libraries"
)
LUA_ERROR = re.compile(r"\S+\.lua:\d+: .*")
BLOCKING = {"drop", "block"}


def lua_problems(log: str) -> list[str]:
    """Lua errors Snort printed, and its own ERROR and FATAL lines."""
    return LUA_ERROR.findall(log) + re.findall(r"(?m)^(?:ERROR|FATAL).*", log)


def version(binary: Path = SNORT3) -> str:
    out = subprocess.run([str(binary), "-V"], capture_output=True, text=True, check=True)
    return re.search(r"Version (\S+)", out.stdout + out.stderr)[1]


def pack_args(config: Path, folder: Path, rules: str) -> list[str]:
    """Snort's arguments for the pack's files in `folder` under configuration `config`."""
    return ["-c", str(config), "--script-path", str(folder), "-R", str(folder / rules)]


def packets(pcap: Path) -> list[bytes]:
    with pcap.open("rb") as f:
        return [buf for _, buf in dpkt.pcap.UniversalReader(f)]


def missing(sent: list[bytes], passed: list[bytes]) -> list[int]:
    """The packets (numbered from 1, as alert_json's pkt_num) of `sent` that are not in
    `passed`, which keeps the order of the packets it let through."""
    gone, k = [], 0
    for n, pkt in enumerate(sent, 1):
        if k < len(passed) and passed[k] == pkt:
            k += 1
        else:
            gone.append(n)
    assert k == len(passed), "pass.pcap holds a packet that was not sent"
    return gone


@dataclass
class SnortRun:
    alerts: list[dict]  # alert_json records
    dropped: list[int]  # packets missing from pass.pcap (inline runs)
    log: str

    def lua_problems(self) -> list[str]:
        return lua_problems(self.log)


class Snort3:
    name = "snort3"  # the cases' key for what differs on Snort 3
    binary = SNORT3

    def __init__(self, stock: bool = False):
        self.stock = stock
        self.id = "snort3-stock" if stock else "snort3"

    @property
    def stock_config(self) -> Path:
        """Snort's own snort.lua, installed beside the binary (<prefix>/etc/snort)."""
        return self.binary.resolve().parent.parent / "etc" / "snort" / "snort.lua"

    def available(self) -> bool:
        return self.binary.exists() and (not self.stock or self.stock_config.exists())

    def version(self) -> str:
        return version(self.binary)

    def _args(self, folder: Path, rules: str, work: Path) -> list[str]:
        config = folder / "snort.lua"
        if self.stock:
            config = work / "snort.lua"
            config.write_text(
                f"include '{self.stock_config}'\n"
                f"include '{folder / 'snort3-snippet.lua'}'\n"
                "alert_json = { file = true }\n"
            )
        return pack_args(config, folder, rules)

    def test_config(self, folder: Path, rules: str) -> tuple[int, str]:
        """`snort -T` on the pack's files in `folder`: exit status and output."""
        work = Path(tempfile.mkdtemp(prefix="cfp2p-snort-"))
        try:
            proc = subprocess.run(
                [str(self.binary), *self._args(folder, rules, work), "-T"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            return proc.returncode, proc.stdout + proc.stderr
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def read_pcap(self, pcap: Path, folder: Path, rules: str, ips: bool = False) -> SnortRun:
        work = Path(tempfile.mkdtemp(prefix="cfp2p-snort-"))
        try:
            cmd = [
                str(self.binary),
                *self._args(folder, rules, work),
                "-r",
                str(pcap),
                "-A",
                "alert_json",
                "-l",
                str(work),
                "-k",
                "none",
                "-q",
            ]
            if ips:
                cmd += ["-Q", "--daq", "dump", "--daq-var", f"file={work / 'pass.pcap'}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            log = proc.stdout + proc.stderr
            if proc.returncode != 0:
                raise RuntimeError(f"snort3 failed on {pcap.name}: {log[-2000:]}")
            out = work / "alert_json.txt"
            alerts = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
            dropped = missing(packets(pcap), packets(work / "pass.pcap")) if ips else []
            return SnortRun(alerts, dropped, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
