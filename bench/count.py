"""Deterministic cost: the instructions (Ir) an engine executes on its packet path, counted
by valgrind's callgrind, on the first N packets of a cached bench input.

Only the packet path is counted (callgrind's --toggle-collect): Suricata's
`PcapFileDispatch` (with `--runmode single` the one thread that reads, decodes, tracks flows,
detects and logs each packet), Snort 3's `PacketManager::decode` and
`DetectionEngine::inspect` (decoding, then the inspectors, streams and detection). Start-up,
rule loading and the idle threads that made whole-process counts wander are left out.
Both functions are exported by the stripped builds (`nm -D`). The engines seed hashes and
LuaJIT's PRNG from getrandom(2); bench/fixedseed.c, preloaded, makes those bytes fixed, so two
runs of one arm repeat to about 5 in a million (what is left: the name of each run's work folder
reaches the engine; spread shown by `--runs 2`).

    python -m bench.count --engine suricata8 --input flood [--packets N] [--arm pack]
    python -m bench.count --engine snort3 --input tcp --rules my.snort --lua mydir/
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import inputs
from bench.arms import Ruleset, arm_ruleset
from bench.harness import ENGINES, ROOT, SNORT3, lua_problems, pack_args, snort_lua_problems

ENGINE_NAMES = ("suricata7", "suricata8", "snort3")
INPUT_NAMES = tuple(s.name for s in inputs.INPUTS)
# Packets per count: one count takes 20-70 s under valgrind on this machine.
PACKETS = {"mix": 50_000, "flood": 5_000, "tcp": 5_000}
SLICES = inputs.CACHE / "slices"
SHIM_SRC = Path(__file__).with_name("fixedseed.c")
SURICATA_TOGGLES = ("PcapFileDispatch",)
SNORT_TOGGLES = ("snort::PacketManager::decode(*", "snort::DetectionEngine::inspect(*")
# Start-up under valgrind: Hyperscan's compile is slow; Aho-Corasick and Boyer-Moore are not.
# A stats record every second: a count ends at the first one after the pcap's end.
SURICATA_FAST = ("mpm-algo=ac", "spm-algo=bm", "stats.interval=1")


class CountError(RuntimeError):
    """An engine run that cannot be counted (it failed, or its rules or scripts did not load)."""


@dataclass
class Count:
    engine: str
    input: str
    arm: str
    packets: int
    ir: int
    seconds: float  # wall time of the run under valgrind
    rules_loaded: int


# --- inputs -----------------------------------------------------------------------------------


def input_slice(full: Path, packets: int) -> Path:
    """The first `packets` packets of a cached input, cached beside it."""
    SLICES.mkdir(parents=True, exist_ok=True)
    dest = SLICES / f"{full.stem}-first{packets}.pcap"
    if not dest.exists():
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            out.write(inputs.PCAP_GLOBAL)
            for i, (ts, frame) in enumerate(inputs.iter_records(full)):
                if i >= packets:
                    break
                sec, usec = int(ts), round((ts - int(ts)) * 1e6)
                if usec >= 1_000_000:
                    sec, usec = sec + 1, usec - 1_000_000
                out.write(inputs.RECORD.pack(sec, usec, len(frame), len(frame)) + frame)
        tmp.rename(dest)
    scaled = full.stem.rsplit("-", 1)[0]  # input and scale, e.g. mix-x1
    for stale in SLICES.glob(f"{scaled}-*"):  # slices of an input an older generator wrote
        if not stale.name.startswith(full.stem):
            stale.unlink(missing_ok=True)
    return dest


def cached_input(name: str) -> Path:
    spec = next((s for s in inputs.INPUTS if s.name == name), None)
    if spec is None:
        raise SystemExit(f"--input {name}: not one of {', '.join(INPUT_NAMES)}")
    return Path(inputs.ensure(spec, 1.0).path)


def shim() -> Path:
    """bench/fixedseed.c built once (cached by its source's hash)."""
    src = SHIM_SRC.read_bytes()
    out = inputs.CACHE / f"fixedseed-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("no C compiler for bench/fixedseed.c: run `make valgrind`")
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)  # counts may build it at once
        os.close(fd)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", tmp, str(SHIM_SRC), "-ldl"],
                       check=True)
        os.replace(tmp, out)
    return out


def callgrind_total(path: Path) -> int:
    """The collected Ir of a callgrind output file."""
    m = re.search(r"^(?:totals|summary):\s*(\d+)", path.read_text(errors="replace"), re.M)
    if m is None:
        raise CountError(f"{path}: no totals line")
    return int(m.group(1))


def last_stats(eve: Path) -> dict:
    """The last stats record of an eve.json (Suricata 8's Lua error counters are there)."""
    stats: dict = {}
    if eve.exists():
        with open(eve, "rb") as f:
            for line in f:
                if b'"event_type":"stats"' in line and line.endswith(b"\n"):
                    stats = json.loads(line)["stats"]
    return stats


def _valgrind(out: str, toggles: tuple[str, ...]) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            *(f"--toggle-collect={t}" for t in toggles)]


# --- Suricata ---------------------------------------------------------------------------------


@contextlib.contextmanager
def proc_mounted(root: Path):  # noqa: ANN201 - a context manager
    """/proc mounted in the chroot while counts run there (valgrind reads /proc/self); the
    last user unmounts it. Each user holds a shared lock, taken exclusively only to mount,
    so counts run side by side (an exclusive request waiting on a shared holder had
    serialized them)."""
    lock = open(root / "tmp" / ".cfp2p-bench-proc.lock", "a")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        while not os.path.ismount(root / "proc"):
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.ismount(root / "proc"):
                subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
            fcntl.flock(lock, fcntl.LOCK_SH)
        yield
    finally:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            subprocess.run(["umount", str(root / "proc")], check=False)
        except BlockingIOError:
            pass  # another count still runs: it unmounts
        lock.close()


def _suricata(engine: str):  # noqa: ANN202
    eng = next((e for e in ENGINES if e.name == engine), None)
    if eng is None or not eng.available():
        raise SystemExit(f"{engine} is not installed: run `make engines`")
    if eng.root is not None and not (eng.root / "usr/bin/valgrind").exists():
        raise SystemExit(f"no valgrind in {eng.root}: run `make valgrind`")
    return eng


def _total(out: Path, keep: Path | None) -> int:
    """The count of a run; with `keep`, its callgrind output saved there (for
    callgrind_annotate: where the instructions went)."""
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, keep)
    return callgrind_total(out)


def _stats_records(eve: Path) -> int:
    """Stats records written whole (up to the file's last newline)."""
    if not eve.exists():
        return 0
    data = eve.read_bytes()
    return data[: data.rfind(b"\n") + 1].count(b'"event_type":"stats"')


def _no_core() -> None:
    """No vgcore file of the SIGQUIT that ends a count (valgrind honours RLIMIT_CORE)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run_to_end_of_pcap(cmd: list[str], env: dict[str, str], logs: Path,
                        timeout: float = 3600) -> tuple[int, str]:
    """Run Suricata under callgrind until it has read the whole pcap and written a stats
    record after that (Suricata 8's Lua error counters are there), then end it with
    SIGQUIT, which Suricata leaves to its default action and on which callgrind still
    writes its counts. Its shutdown (every flow still in the table logged by threads that
    valgrind runs one at a time) took 5-15 minutes a run here against seconds of packets,
    and none of it is on the packet path (measured: the same count either way)."""
    suricata_log, eve = logs / "suricata.log", logs / "eve.json"
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=_no_core)
        deadline, stats_at_end = time.monotonic() + timeout, None
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise CountError(f"{cmd[:3]} still running after {timeout:.0f} s")
            if stats_at_end is None:
                if suricata_log.exists() and "time elapsed" in suricata_log.read_text(
                        errors="replace"):
                    stats_at_end = _stats_records(eve)
            elif _stats_records(eve) > stats_at_end:
                proc.send_signal(signal.SIGQUIT)
                proc.wait()
                break
            time.sleep(0.5)
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace")


def count_suricata(engine: str, ruleset: Ruleset, pcap: Path,
                   keep: Path | None = None) -> tuple[int, int, float]:
    """(Ir, rules loaded, seconds) of one Suricata run under callgrind."""
    eng = _suricata(engine)
    work = eng._workdir()
    try:
        rules = work / "rules"
        rules.mkdir()
        for name, text in ruleset.files.items():
            (rules / name).write_text(text)
        shutil.copy(pcap, work / "input.pcap")
        shutil.copy(shim(), work / "fixedseed.so")
        (work / "log").mkdir()
        cmd = [*_valgrind(eng._inside(work / "callgrind.out"), SURICATA_TOGGLES),
               "suricata", "-r", eng._inside(work / "input.pcap"),
               "-S", eng._inside(rules / ruleset.rules), "-l", eng._inside(work / "log"),
               "-k", "none", "--runmode", "single", *eng._settings(rules),
               *(x for s in SURICATA_FAST for x in ("--set", s))]
        if eng.root is not None:
            cmd = ["chroot", str(eng.root), *cmd]
        env = {**os.environ, "LD_PRELOAD": eng._inside(work / "fixedseed.so")}
        started = time.monotonic()
        with proc_mounted(eng.root) if eng.root is not None else contextlib.nullcontext():
            rc, out = _run_to_end_of_pcap(cmd, env, work / "log")
        seconds = time.monotonic() - started
        log = out
        if (work / "log" / "suricata.log").exists():
            log += (work / "log" / "suricata.log").read_text(errors="replace")
        if rc not in (0, -signal.SIGQUIT):
            raise CountError(f"{engine} {ruleset.name} exited {rc}: {log[-3000:]}")
        m = re.search(r"(\d+) rules? successfully loaded, (\d+) rules? failed", log)
        loaded, failed = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        lua = lua_problems(eng.major, log, last_stats(work / "log" / "eve.json"))
        if failed or lua:
            raise CountError(f"{engine} {ruleset.name}: {failed} rules failed; "
                             f"Lua problems: {lua[:5]}")
        return _total(work / "callgrind.out", keep), loaded, seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- Snort 3 ----------------------------------------------------------------------------------


def count_snort(ruleset: Ruleset, pcap: Path, keep: Path | None = None) -> tuple[int, int, float]:
    """(Ir, rules loaded, seconds) of one Snort 3 run under callgrind. The binary is run
    directly (bin/snort is a shell wrapper) with the wrapper's environment."""
    prefix = SNORT3.resolve().parent.parent
    binary = prefix / "bin" / "snort.bin"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing (SNORT3={SNORT3})")
    work = Path(tempfile.mkdtemp(prefix="cfp2p-count-"))
    try:
        d = work / "arm"
        d.mkdir()
        for name, text in ruleset.files.items():
            (d / name).write_text(text)
        (work / "log").mkdir()
        cmd = [*_valgrind(str(work / "callgrind.out"), SNORT_TOGGLES), str(binary),
               *pack_args(d / "snort.lua", d, ruleset.rules), "-r", str(pcap.resolve()),
               "-k", "none", "-A", "none", "-l", str(work / "log")]
        env = {**os.environ, "LD_PRELOAD": str(shim()),
               "LD_LIBRARY_PATH": str(prefix / "lib"),
               "LUA_PATH": f"{prefix}/include/snort/lua/?.lua;;"}
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work / "log",
                              timeout=3600)
        seconds = time.monotonic() - started
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise CountError(f"snort3 {ruleset.name} exited {proc.returncode}: {log[-3000:]}")
        problems = snort_lua_problems(log)
        if problems:
            raise CountError(f"snort3 {ruleset.name}: Lua problems: {problems[:5]}")
        m = re.search(r"^\s+total rules loaded: (\d+)", log, re.M)
        return _total(work / "callgrind.out", keep), int(m.group(1)) if m else 0, seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count(engine: str, ruleset: Ruleset, pcap: Path, packets: int, input_name: str,
          keep: Path | None = None) -> Count:
    """One count of an arm on a slice (`packets` packets of input `input_name`)."""
    if engine == "snort3":
        ir, loaded, secs = count_snort(ruleset, pcap, keep)
    else:
        ir, loaded, secs = count_suricata(engine, ruleset, pcap, keep)
    return Count(engine, input_name, ruleset.name, packets, ir, secs, loaded)


# --- command line -----------------------------------------------------------------------------


def ruleset_from_files(engine: str, rules: Path, lua: Path | None) -> Ruleset:
    """A rules file and a folder of scripts (Snort: the folder of snort.lua and the option
    scripts; without snort.lua there, the pack's is used)."""
    if not rules.is_file():
        raise SystemExit(f"--rules {rules}: no such file")
    folder = lua or (ROOT / ("snort3" if engine == "snort3" else "lua"))
    if not folder.is_dir():
        raise SystemExit(f"--lua {folder}: no such folder")
    files = {f.name: f.read_text() for f in sorted(folder.glob("*.lua"))}
    if engine == "snort3":
        files.setdefault("snort.lua", (ROOT / "snort3" / "snort.lua").read_text())
    files[rules.name] = rules.read_text()
    return Ruleset(f"file:{rules.name}", files, rules.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.count", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, choices=ENGINE_NAMES)
    ap.add_argument("--input", required=True, choices=INPUT_NAMES)
    ap.add_argument("--packets", type=int, help=f"default {PACKETS}")
    ap.add_argument("--arm", help="a named arm (bench.arms; default pack)")
    ap.add_argument("--rules", type=Path, help="a rules file instead of an arm")
    ap.add_argument("--lua", type=Path, help="with --rules: the folder of its scripts")
    ap.add_argument("--runs", type=int, default=1, help="runs of the same arm (spread)")
    ap.add_argument("--keep", type=Path, metavar="FILE",
                    help="save the (last) run's callgrind output here, for callgrind_annotate")
    args = ap.parse_args(argv)
    if args.rules and args.arm:
        ap.error("--rules and --arm exclude each other")
    if args.lua and not args.rules:
        ap.error("--lua goes with --rules")
    if args.packets is not None and args.packets < 1:
        ap.error("--packets must be positive")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: run `make valgrind`")
    if args.rules:
        ruleset = ruleset_from_files(args.engine, args.rules, args.lua)
    else:
        ruleset = arm_ruleset(args.engine, args.arm or "pack")
    n = args.packets or PACKETS[args.input]
    pcap = input_slice(cached_input(args.input), n)
    irs = []
    for _ in range(args.runs):
        try:
            c = count(args.engine, ruleset, pcap, n, args.input, args.keep)
        except CountError as e:
            print(e, file=sys.stderr)
            return 1
        irs.append(c.ir)
        print(f"{c.engine} {c.input} {c.arm}: {c.ir} Ir on {c.packets} packets "
              f"({c.ir / c.packets:,.0f} per packet; {c.rules_loaded} rules; {c.seconds:.0f} s)",
              flush=True)
    if len(irs) > 1:
        print(f"spread: {(max(irs) - min(irs)) / min(irs):.4%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
