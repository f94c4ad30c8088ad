"""The `unetpp` command: a thin layer that parses, calls one API function and prints."""

from __future__ import annotations

import argparse
import importlib
import sys

from unetpp.errors import UnetppError

# Each module unetpp.cli.cmd_<name> defines add_parser(subparsers) and run(args) -> int.
COMMANDS = ["run", "prepare", "preprocess", "export", "infer", "evaluate", "train", "compile", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetpp", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"unetpp.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"unetpp.cli.cmd_{name}":
                continue
            raise
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UnetppError as exc:
        print(f"unetpp {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"unetpp {args.command}: interrupted; completed outputs are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
