"""Release: the pack as a suricata-update source, built reproducibly.

`python -m generator.targets.release.dist` (`make dist`) writes into dist/:

    conficker-p2p-<version>.tar.gz       rules, Lua script, sid-msg.map (v2), docs,
                                         snort3/, LICENSE, VERSION, CHANGELOG.md
    conficker-p2p-<version>.tar.gz.md5   what suricata-update compares before fetching
    index.yaml                           a suricata-update source index with the pack

The rules, the script and the docs are rendered from the spec with its default options
and the revs of the committed locks (a stale lock is refused: run `make rules`). The
archive is the same bytes on every build of one commit: entries sorted, mtimes from
SOURCE_DATE_EPOCH or else the commit time, owner 0/0 without names, fixed modes, gzip
without name or time.

In the archive the Lua script sits beside the rules file: suricata-update 1.3.8 copies
a script a rule names with `lua:` from the rules file's folder; 1.3.4 copies it only
with --no-merge (docs/index.md, README).

The Snort 3 files ride along in snort3/: suricata-update parses only `*.rules`, and the
Snort rules end in `.snort`. 1.3.4 --no-merge still copies every archive file, by base
name, into its output folder: no two base names are the same (tests/unit/test_dist.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import idstools.rule

from ... import spec
from ..pack import render
from ..revs import locks

ROOT = Path(__file__).resolve().parents[3]
VENDOR = "The conficker-p2p pack authors"
# Oldest Suricata the pack loads on (Lua rules with the payload buffer, as rendered).
MIN_VERSION = "7.0.0"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class DistError(Exception):
    """Bad input for a release: which file or setting, and what is wrong."""


@dataclass(frozen=True)
class Release:
    tarball: Path
    md5: Path
    index: Path


def version(root: Path | None = None) -> str:
    path = (root or ROOT) / "VERSION"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise DistError(f"{path}: cannot read: {err.strerror}") from None
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise DistError(f"{path}: expected a version like 1.2.3, got {text!r}")
    return text


def source_date_epoch(root: Path | None = None) -> int:
    """SOURCE_DATE_EPOCH if set, else the time of the commit checked out."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None:
        if not env.isdigit():
            raise DistError(f"SOURCE_DATE_EPOCH: expected unix seconds, got {env!r}")
        return int(env)
    proc = subprocess.run(
        ["git", "-C", str(root or ROOT), "log", "-1", "--format=%ct"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise DistError("SOURCE_DATE_EPOCH: not set, and no git commit to take the time from")
    return int(proc.stdout.strip())


def sid_msg_map(rules_text: str) -> str:
    """v2 sid-msg.map (gid || sid || rev || classtype || priority || msg || refs), by sid,
    in idstools' format."""
    rules = [idstools.rule.parse(line) for line in rules_text.splitlines()]
    lines = [idstools.rule.format_sidmsgmap_v2(r) for r in sorted(filter(None, rules), key=_sid)]
    return "\n".join(lines) + "\n"


def _sid(rule: idstools.rule.Rule) -> int:
    return rule.sid


def _changelog(root: Path, ver: str) -> bytes:
    path = root / "CHANGELOG.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DistError(f"{path}: cannot read: {err.strerror}") from None
    if f"\n## {ver}\n" not in text:
        raise DistError(f"{path}: no '## {ver}' section for VERSION {ver}")
    return text.encode()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DistError(f"{path}: cannot read: {err.strerror}") from None


def contents(loaded: spec.Spec, root: Path) -> dict[str, bytes]:
    """The archive's files by path inside `<name>-<version>/`."""
    for path, resolved in locks(loaded):
        if resolved.changed:
            raise DistError(
                f"{path}: out of date ({'; '.join(resolved.changed)}); run `make rules` and commit"
            )
    ver = version(root)
    rendered = render(loaded, loaded.defaults)
    rules = rendered[f"rules/{loaded.pack.rules_file}"]
    files = {
        f"rules/{loaded.pack.rules_file}": rules.encode(),
        # beside the rules file: where suricata-update looks for a `lua:` script
        **{
            f"rules/{e.lua_script}": rendered[f"lua/{e.lua_script}"].encode()
            for e in loaded.decoder.engines
        },
        "rules/sid-msg.map": sid_msg_map(rules).encode(),
        "LICENSE": _read(root / "LICENSE"),
        "VERSION": f"{ver}\n".encode(),
        "CHANGELOG.md": _changelog(root, ver),
    }
    shipped = ("docs/", "snort3/")  # as rendered; rules/ and lua/ are placed above
    files.update({rel: text.encode() for rel, text in rendered.items() if rel.startswith(shipped)})
    return files


def tarball(prefix: str, files: dict[str, bytes], mtime: int) -> bytes:
    """A .tar.gz of the files under `prefix/`, the same bytes for the same input."""
    raw = io.BytesIO()
    # filename="" and mtime=0: the gzip header carries neither a name nor a time
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            dirs = {str(Path(prefix, rel).parent) for rel in files}
            dirs |= {str(p) for d in list(dirs) for p in Path(d).parents if str(p) != "."}
            entries = [(d, None) for d in dirs] + [(f"{prefix}/{r}", b) for r, b in files.items()]
            for name, data in sorted(entries):
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
                if data is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def index_yaml(name: str, url: str, root: Path) -> str:
    """A suricata-update source index (the format of its index.yaml) with the pack."""
    project = tomllib.loads(_read(root / "pyproject.toml").decode())["project"]
    entry = {
        "summary": project["description"],
        "vendor": VENDOR,
        "license": project["license"]["text"],
        "url": url,
        "min-version": MIN_VERSION,
        "checksum": True,
    }
    lines = ["# suricata-update source index; `make dist` writes it.", "version: 1", "sources:"]
    lines.append(f"  {name}:")
    lines += [f"    {k}: {_yaml_scalar(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(
    out: Path,
    base_url: str = DEFAULT_BASE_URL,
    spec_path: Path = spec.DEFAULT_SPEC,
    root: Path | None = None,
) -> Release:
    """Build the release into `out` from the spec and the files of `root` (VERSION,
    LICENSE, CHANGELOG.md, pyproject.toml; default: this repository). Every input is
    checked before anything is written."""
    root = root or ROOT
    if not base_url.startswith(("http://", "https://", "file://")):
        raise DistError(f"--base-url: expected an http(s):// or file:// URL, got {base_url!r}")
    loaded = spec.load(spec_path)
    ver = version(root)
    prefix = f"{loaded.pack.name}-{ver}"
    data = tarball(prefix, contents(loaded, root), source_date_epoch(root))
    name = f"{prefix}.tar.gz"
    outputs = {
        name: data,
        f"{name}.md5": (hashlib.md5(data).hexdigest() + "\n").encode(),
        "index.yaml": index_yaml(loaded.pack.name, f"{base_url.rstrip('/')}/{name}", root).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".dist-") as tmp:
        for rel, blob in outputs.items():
            Path(tmp, rel).write_bytes(blob)
        for rel in outputs:
            Path(tmp, rel).replace(out / rel)
    return Release(out / name, out / f"{name}.md5", out / "index.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.targets.release.dist", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("DIST_URL", DEFAULT_BASE_URL),
        help="where the tarball is published, for index.yaml (default: $DIST_URL or "
        f"{DEFAULT_BASE_URL}, i.e. `python3 -m http.server -d dist 8000`)",
    )
    parser.add_argument("--spec", type=Path, default=spec.DEFAULT_SPEC, help="spec file")
    args = parser.parse_args(argv)
    try:
        release = build(args.out, args.base_url, args.spec)
    except (DistError, spec.SpecError) as err:
        print(f"dist: error: {err}", file=sys.stderr)
        return 2
    digest = hashlib.sha256(release.tarball.read_bytes()).hexdigest()
    print(f"{release.tarball} sha256 {digest}")
    print(f"{release.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
