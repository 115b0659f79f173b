"""The release tarball: the same bytes on every build, the files suricata-update needs
where it looks for them, an index it reads, and bad input refused before writing."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
from pathlib import Path

import idstools.rule
import pytest
import suricata.update.sources

from generator import spec
from generator.targets import lock, pack
from generator.targets.release import dist

ROOT = Path(__file__).resolve().parents[2]
SPEC = spec.load()
EPOCH = 1_700_000_000


@pytest.fixture
def release(tmp_path, monkeypatch) -> dist.Release:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    return dist.build(tmp_path / "a", "http://127.0.0.1:9/rel/")


def test_two_builds_give_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # the commit time
    first = dist.build(tmp_path / "a")
    second = dist.build(tmp_path / "b")
    for a, b in zip(
        (first.tarball, first.md5, first.index),
        (second.tarball, second.md5, second.index),
        strict=True,
    ):
        assert a.read_bytes() == b.read_bytes(), a.name
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    third = dist.build(tmp_path / "c")
    assert third.tarball.read_bytes() != first.tarball.read_bytes(), "mtimes follow the epoch"


def test_archive_is_normalised(release):
    data = release.tarball.read_bytes()
    assert data[3] & 0x08 == 0, "gzip header without a file name"
    assert data[4:8] == b"\0\0\0\0", "gzip header without a time"
    with tarfile.open(release.tarball) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    prefix = f"{SPEC.pack.name}-{dist.version()}"
    assert all(n == prefix or n.startswith(prefix + "/") for n in names)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH), m.name
        assert m.mode == (0o755 if m.isdir() else 0o644), m.name
    assert gzip.decompress(data)  # a valid gzip stream


def _files(release: dist.Release) -> dict[str, bytes]:
    """The archive's files by path inside `<name>-<version>/`."""
    prefix = f"{SPEC.pack.name}-{dist.version()}/"
    with tarfile.open(release.tarball) as tar:
        return {m.name.removeprefix(prefix): tar.extractfile(m).read() for m in tar if m.isfile()}


def test_archive_holds_the_pack(release):
    files = _files(release)
    rendered = pack.render(SPEC, SPEC.defaults)
    rules = rendered[f"rules/{SPEC.pack.rules_file}"]
    assert files[f"rules/{SPEC.pack.rules_file}"].decode() == rules
    for e in SPEC.decoder.engines:
        assert files[f"rules/{e.lua_script}"].decode() == rendered[f"lua/{e.lua_script}"]
    for rel, text in rendered.items():
        if rel.startswith("docs/"):
            assert files[rel].decode() == text, rel
    for name in ("LICENSE", "VERSION", "CHANGELOG.md"):
        assert files[name] == (ROOT / name).read_bytes(), name
    assert b"The conficker-p2p pack authors" in files["LICENSE"]
    # sid-msg.map v2: gid || sid || rev || classtype || priority || msg || refs
    entries = [line.split(" || ") for line in files["rules/sid-msg.map"].decode().splitlines()]
    parsed = [idstools.rule.parse(line) for line in rules.splitlines()]
    parsed = sorted(filter(None, parsed), key=lambda r: r.sid)
    assert [e[:3] for e in entries] == [[str(r.gid), str(r.sid), str(r.rev)] for r in parsed]
    assert [e[5] for e in entries] == [r.msg for r in parsed]


def test_archive_holds_the_snort3_files(release):
    """Shipped as rendered, in snort3/, and out of suricata-update's way: it parses only
    `*.rules`, and 1.3.4 --no-merge copies every file by base name into one folder."""
    files = _files(release)
    snort3 = {r: t for r, t in pack.render(SPEC, SPEC.defaults).items() if r.startswith("snort3/")}
    assert "snort3/conficker-p2p.snort" in snort3
    for rel, text in snort3.items():
        assert files[rel] == text.encode(), rel
        assert not rel.endswith(".rules"), rel
    assert [r for r in files if r.endswith(".rules")] == [f"rules/{SPEC.pack.rules_file}"]
    names = [Path(r).name for r in files]
    assert len(names) == len(set(names)), sorted(names)


def test_md5_and_index(release, tmp_path):
    data = release.tarball.read_bytes()
    assert release.md5.read_text().strip() == hashlib.md5(data).hexdigest()
    index = suricata.update.sources.Index(str(release.index))
    source = index.get_source_by_name(SPEC.pack.name)
    assert index.resolve_url(SPEC.pack.name, {}) == (
        f"http://127.0.0.1:9/rel/{release.tarball.name}"
    )
    assert {"summary", "vendor", "license", "min-version"} <= set(source)
    assert source["license"] == "MIT"


@pytest.fixture
def root(tmp_path) -> Path:
    """A copy of what a release is built from."""
    r = tmp_path / "root"
    (r / "spec").mkdir(parents=True)
    for name in ("VERSION", "LICENSE", "CHANGELOG.md", "pyproject.toml"):
        shutil.copy(ROOT / name, r / name)
    shutil.copy(SPEC.source, r / "spec")
    for target in ("", "snort3"):
        shutil.copy(lock.lock_path(SPEC.source, target), r / "spec")
    return r


def _refused(root: Path, tmp_path: Path, capsys, monkeypatch, problem: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    monkeypatch.setattr(dist, "ROOT", root)
    out = tmp_path / "out"
    spec_path = root / "spec" / Path(SPEC.source).name
    code = dist.main(["--out", str(out), "--spec", str(spec_path)])
    assert code == 2
    assert problem in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir()), "nothing written"


def test_stale_lock_is_refused(root, tmp_path, capsys, monkeypatch):
    path = root / "spec" / Path(SPEC.source).name
    path.write_text(path.read_text().replace("report: every}", "report: once_per_flow}"))
    _refused(root, tmp_path, capsys, monkeypatch, "out of date")


def test_bad_version_is_refused(root, tmp_path, capsys, monkeypatch):
    (root / "VERSION").write_text("one\n")
    _refused(root, tmp_path, capsys, monkeypatch, f"{root / 'VERSION'}: expected a version")


def test_version_without_changelog_is_refused(root, tmp_path, capsys, monkeypatch):
    (root / "VERSION").write_text("9.9.9\n")
    _refused(root, tmp_path, capsys, monkeypatch, "no '## 9.9.9' section")


def test_bad_epoch_is_refused(root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dist, "ROOT", root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert dist.main(["--out", str(tmp_path / "out")]) == 2
    assert "SOURCE_DATE_EPOCH" in capsys.readouterr().err
