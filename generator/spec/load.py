"""Loading the spec: YAML to the typed objects of generator.spec.model, checked field by field.

The reader is hand-written (`_Reader`: typed access to one mapping, with its dotted path)
rather than pydantic v2: it is about 50 lines, every error names the file and the exact
field (`signatures[2].rules[0].sid_offset`) with a message written for this spec, and the
checks across fields (unique names and sid offsets, sid ranges, the protocol's blocks) read
as plain code. A pydantic model would restate each dataclass as a second class and need a
translation of its error messages to keep these; so the reader stays, and PyYAML is the
only dependency.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from .model import (
    ACTIONS,
    DEFAULT_SPEC,
    DIRECTIONS,
    MATCHES,
    REPORTS,
    RULE_TRANSPORTS,
    TRANSPORTS,
    Block,
    Decoder,
    DecoderRule,
    Docs,
    EngineTarget,
    Options,
    Pack,
    Protocol,
    Rule,
    Signature,
    Snort3Target,
    Spec,
    SpecError,
    _all_rules,
    _check_options,
    _check_sids,
)


class _Reader:
    """Typed access to one mapping of the YAML document, with its path for errors."""

    def __init__(self, source: str, where: str, data: Any):
        self.source, self.where = source, where
        if not isinstance(data, dict):
            raise SpecError(source, where or "top level", f"expected a mapping, got {_kind(data)}")
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(self.source, self._path(key), problem)

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        # bool is an int in Python; an int field must not accept true/false.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            raise self.fail(key, f"expected {_name(kind)}, got {_kind(value)} {value!r}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in allowed:
            raise self.fail(key, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def child(self, key: str) -> _Reader:
        return _Reader(self.source, self._path(key), self.get(key, dict))

    def children(self, key: str) -> list[_Reader]:
        items = self.get(key, list)
        if not items:
            raise self.fail(key, "expected a non-empty list")
        return [_Reader(self.source, f"{self._path(key)}[{i}]", x) for i, x in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        str: "a string",
        bool: "true or false",
        dict: "a mapping",
        list: "a list",
    }
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


def _kind(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        str: "string",
        dict: "mapping",
        list: "list",
        float: "number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def load(path: str | Path = DEFAULT_SPEC) -> Spec:
    """Read and validate a spec file; raises SpecError on any problem."""
    return parse(read_yaml(path), str(path))


_REQUIRED: Any = object()


def read_yaml(
    path: str | Path, error: type[SpecError] = SpecError, missing: Any = _REQUIRED
) -> Any:
    """The YAML document at path. A problem raises `error` (SpecError or a subclass of it)
    naming the file and the line; a missing file gives `missing` when one is given."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        if isinstance(err, FileNotFoundError) and missing is not _REQUIRED:
            return missing
        raise error(path, "file", f"cannot read: {err.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "file"
        raise error(path, where, f"not valid YAML: {getattr(err, 'problem', err)}") from None


def parse(data: Any, source: str) -> Spec:
    top = _Reader(source, "", data)
    pack = _pack(top.child("pack"))
    decoder = _decoder(top.child("decoder"))
    defaults = _defaults(top.child("parameters"))
    signatures = tuple(_signature(r) for r in top.children("signatures"))
    meta = top.child("metadata")
    metadata = {k: meta.get(k, str) for k in list(meta.data)}
    refs = tuple(top.get("references", list))
    for i, ref in enumerate(refs):
        if not isinstance(ref, str) or "," not in ref:
            raise top.fail(f"references[{i}]", f"expected 'type,value', got {ref!r}")
    protocol = _protocol(top.child("protocol"))
    snort3 = _snort3(top.child("snort3"))
    top.done()
    spec = Spec(source, pack, decoder, defaults, signatures, metadata, refs, protocol, snort3)
    _check_unique(spec)
    _check_sids(spec, defaults)
    return spec


def _pack(r: _Reader) -> Pack:
    pack = Pack(
        r.get("name", str),
        r.get("rules_file", str),
        r.get("flowint_prefix", str),
        r.get("reply_gid", int),
    )
    if not 1000 <= pack.reply_gid <= 4294967295:
        raise r.fail("reply_gid", f"expected a gid from 1000 (past Snort's builtin generators) "
                     f"to 4294967295, got {pack.reply_gid}")
    r.done()
    return pack


def _snort3(r: _Reader) -> Snort3Target:
    target = Snort3Target(
        r.get("rules_file", str),
        r.get("lua_script", str),
        r.get("option", str),
        r.get("flows", int),
    )
    if target.rules_file.endswith(".rules"):
        raise r.fail("rules_file", "must not end in .rules: suricata-update would load it")
    if not target.lua_script.endswith(".lua"):
        raise r.fail("lua_script", "expected a .lua file name (Snort loads *.lua of --script-path)")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", target.option):
        raise r.fail(
            "option", f"expected a Snort option name ([a-z][a-z0-9_]*), got {target.option!r}"
        )
    if target.flows < 1:
        raise r.fail("flows", f"expected a positive number, got {target.flows}")
    r.done()
    return target


LUA_KINDS = ("luajit", "lua54")


def _engines(r: _Reader) -> tuple[EngineTarget, ...]:
    engines = []
    for rr in r.children("engines"):
        engines.append(
            EngineTarget(
                rr.get("name", str),
                rr.choice("lua", LUA_KINDS),
                rr.get("requires", str),
                rr.get("lua_script", str),
                rr.get("sid_offset", int),
            )
        )
        _check_offset(rr, engines[-1].sid_offset)
        rr.done()
    if not engines:
        raise r.fail("engines", "expected at least one engine")
    return tuple(engines)


def _decoder(r: _Reader) -> Decoder:
    rules = []
    engines = _engines(r)
    for rr in r.children("rules"):
        rule = DecoderRule(
            rr.choice("transport", TRANSPORTS),
            rr.choice("direction", DIRECTIONS),
            rr.get("sid_offset", int),
            rr.get("syn", bool, False),
        )
        _check_offset(rr, rule.sid_offset)
        if rule.syn and rule.transport != "tcp":
            raise rr.fail("syn", "only a tcp rule sees the handshake")
        rr.done()
        rules.append(rule)
    rules = [
        dataclasses.replace(d, sid_offset=d.sid_offset + e.sid_offset, engine=e)
        for e in engines
        for d in rules
    ]
    decoder = Decoder(
        r.get("msg", str),
        r.get("max_streams", int),
        r.get("budget", int),
        r.get("port_cache", int),
        r.get("udp_flows", int),
        r.get("week_slop", int),
        r.get("reorder_bytes", int),
        r.get("reorder_segments", int),
        r.get("reorder_total", int),
        r.get("port_ranges", int),
        engines,
        tuple(rules),
    )
    for key in (
        "max_streams",
        "budget",
        "port_cache",
        "udp_flows",
        "week_slop",
        "reorder_bytes",
        "reorder_segments",
        "reorder_total",
        "port_ranges",
    ):
        if getattr(decoder, key) < 1:
            raise r.fail(key, f"expected a positive number, got {getattr(decoder, key)}")
    _check_msg(r, "msg", decoder.msg)
    r.done()
    return decoder


def _check_offset(r: _Reader, sid_offset: int) -> None:
    if sid_offset < 0:
        raise r.fail("sid_offset", f"expected 0 or more, got {sid_offset}")


def _check_msg(r: _Reader, key: str, value: str) -> None:
    if any(c in value for c in ';"\\'):
        raise r.fail(key, 'must not contain ; " or \\')


def _defaults(r: _Reader) -> Options:
    opts = Options(
        report_interval=r.get("report_interval", int),
        block_tcp=r.get("block_tcp", bool),
        src_net=r.get("src_net", str),
        dst_net=r.get("dst_net", str),
        sid_base=r.get("sid_base", int),
        scan_count=r.get("scan_count", int),
        scan_seconds=r.get("scan_seconds", int),
        strict_flags=r.get("strict_flags", bool),
    )
    r.done()
    _check_options(opts, r.source, "parameters")
    return opts


def _signature(r: _Reader) -> Signature:
    rules = []
    for rr in r.children("rules"):
        rule = Rule(
            transport=rr.choice("transport", RULE_TRANSPORTS),
            sid_offset=rr.get("sid_offset", int),
            action=rr.choice("action", ACTIONS),
            report=rr.choice("report", REPORTS),
            drop_when_block_tcp=rr.get("drop_when_block_tcp", bool, False),
        )
        _check_offset(rr, rule.sid_offset)
        if rule.drop_when_block_tcp and rule.transport != "tcp":
            raise rr.fail("drop_when_block_tcp", "only a tcp rule can be switched by block_tcp")
        rr.done()
        rules.append(rule)
    d = r.child("docs")
    docs = Docs(*(d.get(f.name, str) for f in dataclasses.fields(Docs)))
    d.done()
    sig = Signature(
        name=r.get("name", str),
        msg=r.get("msg", str),
        classtype=r.get("classtype", str),
        priority=r.get("priority", int),
        severity=r.get("severity", str),
        matches=r.choice("matches", MATCHES),
        created_at=r.get("created_at", str),
        updated_at=r.get("updated_at", str),
        rules=tuple(rules),
        docs=docs,
    )
    for key in ("msg", "name"):
        _check_msg(r, key, getattr(sig, key))
    is_scan = sig.matches == "scan"
    for i, rule in enumerate(sig.rules):
        # the scan count is an `ip` rule with its own threshold; nothing else is
        if (rule.transport == "ip") != is_scan or (rule.report == "after_scan_count") != is_scan:
            raise r.fail(
                f"rules[{i}]",
                "a `matches: scan` signature has `ip` rules with `report: after_scan_count`, "
                "and only it",
            )
    if not 1 <= sig.priority <= 255:
        raise r.fail("priority", f"expected 1 to 255, got {sig.priority}")
    r.done()
    return sig


def _protocol(r: _Reader) -> Protocol:
    blocks = []
    for br in r.children("blocks"):
        block = Block(
            br.get("name", str),
            br.get("flag", int),
            br.get("size", int),
            br.get("length_at", int, None),
        )
        if block.flag <= 0 or block.flag & (block.flag - 1) or block.flag > 0xFFFF:
            raise br.fail("flag", f"expected a single bit of a u16, got {block.flag:#x}")
        if block.size <= 0:
            raise br.fail("size", f"expected a positive size, got {block.size}")
        if block.length_at is not None and not 0 <= block.length_at <= block.size - 2:
            raise br.fail("length_at", f"expected a u16 inside the {block.size}-byte block")
        br.done()
        blocks.append(block)
    seen = r.child("seen_flags")
    seen_flags = {t: seen.get(t, int) for t in TRANSPORTS}
    seen.done()
    words = r.get("port_blacklist", list)
    if len(words) != 64 or not all(isinstance(w, int) and 0 <= w <= 0xFFFFFFFF for w in words):
        raise r.fail("port_blacklist", "expected 64 u32 words")
    proto = Protocol(
        key_size=r.get("key_size", int),
        flags_size=r.get("flags_size", int),
        checksum_size=r.get("checksum_size", int),
        tcp_length_size=r.get("tcp_length_size", int),
        data_flag=r.get("data_flag", int),
        seen_flags=seen_flags,
        blocks=tuple(blocks),
        week_offset=r.get("week_offset", int),
        week_seconds=r.get("week_seconds", int),
        port_multiplier=r.get("port_multiplier", int),
        port_blacklist=tuple(words),
    )
    if proto.data_flag not in {b.flag for b in blocks}:
        raise r.fail(
            "data_flag", f"expected the flag of one of the blocks, got {proto.data_flag:#x}"
        )
    r.done()
    return proto


def _check_unique(spec: Spec) -> None:
    names: set[str] = set()
    for i, sig in enumerate(spec.signatures):
        if sig.name in names:
            raise SpecError(
                spec.source, f"signatures[{i}].name", f"duplicate signature {sig.name!r}"
            )
        names.add(sig.name)
    offsets: dict[int, str] = {}
    for where, rule in _all_rules(spec):
        if rule.sid_offset in offsets:
            raise SpecError(
                spec.source,
                f"{where}.sid_offset",
                f"duplicate sid offset {rule.sid_offset} (also {offsets[rule.sid_offset]})",
            )
        offsets[rule.sid_offset] = where
