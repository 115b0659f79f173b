"""The input cache: files under .cache/bench/ named by the input, the scale and a hash of
what shapes them (the spec, the modules of bench/inputs/ and the generator modules they
use), written again only when one of those changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.inputs.specs import InputInfo, InputSpec
from bench.inputs.writer import generate
from generator import codec as protocol

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"


def source_hash(spec: InputSpec | None = None) -> str:
    """Hash of what shapes an input: its spec (sizes, kinds, shares), the modules of this
    package and the generator modules they use."""
    h = hashlib.sha256()
    if spec is not None:
        kinds = [(k.name, k.build.__name__, k.share) for k in spec.kinds]
        h.update(repr((spec.name, spec.packets, spec.pps, kinds)).encode())
    traffic = sorted(Path(protocol.__file__).with_name("traffic").glob("*.py"))
    package = sorted(Path(__file__).parent.glob("*.py"))
    for module in (*package, Path(protocol.__file__), *traffic):
        h.update(module.read_bytes())
    return h.hexdigest()[:12]


def ensure(spec: InputSpec, scale: float, cache: Path = CACHE) -> InputInfo:
    """The cached input for (spec, scale, generator source), written if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.name}-x{scale:g}-{source_hash(spec)}"
    pcap, meta = cache / f"{stem}.pcap", cache / f"{stem}.json"
    for stale in cache.glob(f"{spec.name}-x{scale:g}-*"):
        if not stale.name.startswith(stem):  # written by an older generator
            stale.unlink(missing_ok=True)
    if pcap.exists() and meta.exists():
        return InputInfo.from_json(meta.read_text())
    info = generate(spec, scale, pcap)
    meta.write_text(info.to_json())
    return info
