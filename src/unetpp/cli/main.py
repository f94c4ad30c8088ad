"""The `unetpp` command: a thin layer that parses, calls one API function and prints."""

from __future__ import annotations

import argparse
import importlib
import sys

from unetpp.errors import UnetppError

# Each module unetpp.cli.cmd_<name> ('-' read as '_') defines add_parser(subparsers) and run(args) -> int.
COMMANDS = ["run", "prepare", "preprocess", "export", "infer", "evaluate", "train", "compile", "bench", "predict",
            "train-instance"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with `only` that one (a command's module may import heavy packages such
    as torch; `unetpp infer` on an ONNX model should not pay for them at start-up)."""
    parser = argparse.ArgumentParser(prog="unetpp", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"unetpp.cli.cmd_{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name == f"unetpp.cli.cmd_{name.replace('-', '_')}":
                continue
            raise
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
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
