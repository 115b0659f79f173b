"""suricata-update installing the released pack, on each suricata-update/Suricata pair.

The release is built into a temporary folder and served over HTTP on 127.0.0.1; every
suricata-update run gets its own data dir, output dir, update.yaml and a suricata.yaml
derived from the engine's own (default-rule-path = the output dir, Lua rules allowed),
so nothing under /etc or /var is written."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from engines import ENGINES, Engine

from generator import spec
from generator.targets.release import dist

SPEC = spec.load()
SOURCE = SPEC.pack.name


@dataclass(frozen=True)
class Pair:
    """A suricata-update and the Suricata it installs for."""

    name: str
    engine: Engine
    # 1.3.4 copies the Lua script only when it does not merge (see docs/index.md)
    merge: bool

    def command(self, args: list[str]) -> list[str]:
        root = self.engine.root
        return (["chroot", str(root)] if root else []) + ["suricata-update", *args]


PAIRS = [
    Pair("update1.3.4-suricata7", ENGINES[0], merge=False),
    Pair("update1.3.8-suricata8", ENGINES[1], merge=True),
]


class Server:
    """dist/ built for this server's URL and served from a thread."""

    def __init__(self, folder: Path):
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.release = dist.build(folder, self.url)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def tarball_url(self) -> str:
        return f"{self.url}/{self.release.tarball.name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@dataclass
class Installed:
    returncode: int
    log: str
    out: Path  # host path of the output folder
    rules: Path
    lua: Path  # the script of the pair's engine


def suricata_yaml(pair: Pair, out_inside: str, rule_file: str) -> str:
    """The engine's suricata.yaml as an operator would adapt it for the pack."""
    text = ((pair.engine.root or Path("/")) / "etc/suricata/suricata.yaml").read_text()
    text, n1 = re.subn(r"(?m)^default-rule-path:.*$", f"default-rule-path: {out_inside}", text)
    text, n2 = re.subn(r"(?m)^rule-files:\n(  - .*\n)+", f"rule-files:\n  - {rule_file}\n", text)
    text, n3 = re.subn(
        r"(?m)^(  lua:\n(?:    #.*\n)*)    #allow-rules: \w+\n", r"\1    allow-rules: true\n", text
    )
    assert (n1, n2, n3) == (1, 1, 1), f"{pair.engine.name}'s suricata.yaml changed layout"
    return text


def install(
    pair: Pair,
    server: Server,
    tuning: dict[str, str] | None = None,
    via_index: bool = False,
    merge: bool | None = None,
) -> Installed:
    """Add the pack as a source (by URL, or from the served index.yaml) and run
    suricata-update with its -T test; `tuning` maps drop.conf, disable.conf and
    modify.conf to their text."""
    merge = pair.merge if merge is None else merge
    eng = pair.engine
    work = eng._workdir()
    out, data = work / "out", work / "data"
    out.mkdir()
    rule_file = "suricata.rules" if merge else SPEC.pack.rules_file
    (work / "suricata.yaml").write_text(suricata_yaml(pair, eng._inside(out), rule_file))
    update_yaml = []
    for name in ("disable.conf", "enable.conf", "drop.conf", "modify.conf"):
        (work / name).write_text((tuning or {}).get(name, ""))
        update_yaml.append(f"{name.replace('.', '-')}: {eng._inside(work / name)}")
    (work / "update.yaml").write_text("\n".join(update_yaml) + "\n")

    log = []

    def run(args: list[str], env: dict[str, str] | None = None) -> int:
        proc = subprocess.run(
            pair.command(["-D", eng._inside(data), *args]),
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        log.append(f"$ suricata-update {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        return proc.returncode

    if via_index:
        env = dict(os.environ, SOURCE_INDEX_URL=f"{server.url}/index.yaml")
        rc = run(["update-sources"], env)
        # an existing installation: enable-source then adds no default et/open source
        (data / "update" / "sources").mkdir(parents=True, exist_ok=True)
        rc = rc or run(["enable-source", SOURCE])
    else:
        rc = run(["add-source", SOURCE, server.tarball_url])
    args = [
        "-c",
        eng._inside(work / "update.yaml"),
        "-o",
        eng._inside(out),
        "--suricata",
        "/usr/bin/suricata",
        "--suricata-conf",
        eng._inside(work / "suricata.yaml"),
        "--no-reload",
        "--fail",
    ]
    rc = rc or run(args + ([] if merge else ["--no-merge"]))
    return Installed(rc, "\n".join(log), out, out / rule_file, out / target(pair).lua_script)


def target(pair: Pair) -> spec.EngineTarget:
    """The pack's engine target (and so its Lua script) for the pair's Suricata."""
    return next(e for e in SPEC.decoder.engines if e.name == pair.engine.name)


def cleanup(installed: Installed) -> None:
    shutil.rmtree(installed.out.parent, ignore_errors=True)
