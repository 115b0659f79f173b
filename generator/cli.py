"""`cfp2p`: render the pack and write its test traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import render, spec


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

    p = sub.add_parser("pcaps", help="write the test traffic")
    p.add_argument("--out", type=Path, default=Path("pcaps"), help="output folder")
    return parser


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
            )
            files = render.render(loaded, opts)
            render.write_tree(files, args.out)
            print(f"rendered {len(files)} files into {args.out} ({render.options_line(opts)})")
        elif args.command == "pcaps":
            from . import pcaps

            written = pcaps.write_pcaps(args.out)
            print(f"wrote {len(written)} pcaps into {args.out}")
    except spec.SpecError as err:
        print(f"cfp2p: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
