"""`cfp2p`: render the pack, write its test traffic, and triage captures.

The top of the generator: each command calls one package (render: generator.targets;
pcaps: generator.traffic; ports and decode: generator.analysis). A new analyst command is a
subparser here and a module in generator/analysis/."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import spec
from .analysis import capture, extract, ports, report, triage
from .targets import common, pack


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cfp2p", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render rules/ and lua/ from the spec")
    r.add_argument("--spec", type=Path, default=spec.DEFAULT_SPEC, help="spec file")
    r.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")
    r.add_argument(
        "--report-interval",
        type=int,
        metavar="SECONDS",
        help="UDP events reported at most once per source per interval",
    )
    r.add_argument(
        "--block-tcp",
        type=_bool,
        metavar="BOOL",
        help="Conficker_P2P_Detected drops TCP sessions instead of alerting",
    )
    r.add_argument("--src-net", help="rule header source address (e.g. $HOME_NET)")
    r.add_argument("--dst-net", help="rule header destination address")
    r.add_argument("--sid-base", type=int, help="first sid of the pack")
    r.add_argument(
        "--scan-count",
        type=int,
        metavar="N",
        help="Conficker_P2P_Scan: attempts on computed ports by one source ...",
    )
    r.add_argument(
        "--scan-seconds", type=int, metavar="SECONDS", help="... within this many seconds"
    )
    r.add_argument(
        "--strict-flags",
        type=_bool,
        metavar="BOOL",
        help="refuse messages without the flags every message seen carries (faster; may miss)",
    )

    p = sub.add_parser("pcaps", help="write the test traffic")
    p.add_argument("--out", type=Path, default=Path("pcaps"), help="output folder")

    pt = sub.add_parser("ports", help="a host's Conficker listener ports in an epoch week")
    pt.add_argument("ip", metavar="IP", help="IPv4 address of the host")
    pt.add_argument(
        "--at",
        metavar="TIME",
        help="ISO 8601 time with Z or an offset, or unix seconds (default: now)",
    )
    pt.add_argument("--json", action="store_true", help="print one JSON object")

    d = sub.add_parser("decode", help="decode the Conficker P2P messages in a capture")
    d.add_argument("capture", metavar="CAPTURE", type=Path, help="pcap or pcapng file")
    d.add_argument(
        "--json", action="store_true", help="JSON Lines: one object per message, then a summary"
    )
    d.add_argument(
        "--extract",
        metavar="DIR",
        type=Path,
        help="write each data block to DIR/<sha256>.bin and a line per message to "
        "DIR/index.jsonl (DIR is created or added to)",
    )
    return parser


def _ports(args: argparse.Namespace) -> None:
    ip = ports.parse_ipv4(args.ip)
    when = time.time() if args.at is None else ports.parse_time(args.at)
    table = ports.port_table(ip, when)
    print(json.dumps(table) if args.json else ports.format_port_table(table, when))


def _decode(args: argparse.Namespace) -> None:
    try:
        _print_decoded(args.capture, args.json, args.extract)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        _quiet_stdout()


def _quiet_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_decoded(path: Path, as_json: bool, folder: Path | None) -> None:
    """Print the records and the summary; with a folder, extract the data blocks into it,
    all or nothing (extract.py). The folder is checked before the capture is read."""
    blocks = extract.Extractor(folder, path) if folder is not None else None
    run = triage.Triage()
    progress = report.ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    header = False
    printing = True
    try:
        for record in run.run(path, progress):
            if blocks is not None and record.sha256 is not None:
                blocks.add(record)
            if not printing:
                continue
            if progress is not None:
                progress.clear()
            try:
                if as_json:
                    print(json.dumps(record.to_json()))
                    continue
                if not header:
                    print(report.RECORD_HEADER)
                    header = True
                print(report.format_record(record))
            except BrokenPipeError:
                if blocks is None:
                    raise
                printing = False  # the reader went away: finish the extraction quietly
                _quiet_stdout()
        if blocks is not None:
            blocks.commit()
    except BaseException:
        if blocks is not None:
            blocks.abort()
        raise
    summary = run.summary()
    if blocks is not None:
        summary["extracted"] = {
            "dir": str(folder),
            "index_lines": blocks.lines,
            "new_files": blocks.new_files,
        }
    if as_json:
        print(json.dumps(summary))
        return
    print(("\n" if header else "") + report.format_summary(summary))
    if blocks is not None:
        print(
            f"\nextracted into {folder}: {blocks.lines} index lines "
            f"({folder / extract.INDEX}), {blocks.new_files} new block files"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "render":
            loaded = spec.load(args.spec)
            opts = loaded.options(
                report_interval=args.report_interval,
                block_tcp=args.block_tcp,
                src_net=args.src_net,
                dst_net=args.dst_net,
                sid_base=args.sid_base,
                scan_count=args.scan_count,
                scan_seconds=args.scan_seconds,
                strict_flags=args.strict_flags,
            )
            files = pack.render(loaded, opts)
            common.write_tree(files, args.out)
            print(f"rendered {len(files)} files into {args.out} ({common.options_line(opts)})")
        elif args.command == "pcaps":
            from .traffic import pcaps  # scapy: imported only for this command

            written = pcaps.write_pcaps(args.out)
            print(f"wrote {len(written)} pcaps into {args.out}")
        elif args.command == "ports":
            _ports(args)
        elif args.command == "decode":
            _decode(args)
    except (
        spec.SpecError,
        capture.CaptureError,
        ports.ArgumentError,
        extract.ExtractError,
    ) as err:
        print(f"cfp2p: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
