"""The `unetpp` command: a thin layer that parses, calls one API function and prints.

`unetpp --help` lists the commands from the static table below without importing any command module (it must
answer in well under half a second); `unetpp COMMAND ...` imports that command's module only.
"""

from __future__ import annotations

import importlib
import sys

from unetpp.errors import UnetppError
from unetpp.log import cli_handler

# Each module unetpp.cli.cmd_<name> ('-' read as '_') defines add_parser(subparsers) and run(args) -> int.
COMMANDS = ["run", "prepare", "preprocess", "export", "infer", "evaluate", "train", "compile", "bench", "predict",
            "serve", "train-instance"]

# One line per command for `unetpp --help` (no imports); tests check every command has one.
SUMMARIES = {
    "run": "the whole chain on DSB2018: prepare, export, preprocess, infer, evaluate, report",
    "predict": "segment images of any size: masks, nucleus labels and counts",
    "infer": "run a model over preprocessed .bin/.npy inputs (ais_bench's equivalent)",
    "prepare": "resize DSB2018 stage1_train to the dsb2018_96 layout",
    "preprocess": "write normalised network inputs (.bin/.npy) for a list of ids",
    "export": "export a checkpoint to ONNX and check it against PyTorch",
    "compile": "build a deployable model: optimised or int8 ONNX, or OpenVINO IR",
    "evaluate": "score infer's outputs (IoU, Dice) or predict's labels (mAP) against masks",
    "train": "train NestedUNet on DSB2018 with upstream's recipe",
    "bench": "sweep backends x batch sizes; report throughput and latency",
    "serve": "a web service and web page for segmentation, batching requests together",
    "train-instance": "train the instance model (foreground + border) on nucleus-scaled crops",
}
STARTERS = ("run", "predict", "infer")

DESCRIPTION = ("UNet++ (NestedUNet) nuclei segmentation: from a PyTorch checkpoint to fast, verified inference "
               "on CPUs (ONNX Runtime, OpenVINO) and NVIDIA GPUs (PyTorch/CUDA).")

EXIT_CODES = "exit codes: 0 all done; 1 finished, some items failed (listed); 2 usage or bad input, nothing done"


def overview() -> str:
    """The text of `unetpp --help`."""
    width = max(len(n) for n in COMMANDS)
    ordered = [n for n in STARTERS if n in COMMANDS] + [n for n in COMMANDS if n not in STARTERS]
    lines = ["usage: unetpp COMMAND [options]   (unetpp COMMAND --help for its options)", "", DESCRIPTION, "",
             "start with:", "  unetpp run        the main job (synthetic data unless --data/UNETPP_DATA is given)",
             "  unetpp predict    your own images -> masks, labels, counts",
             "  unetpp infer      a model over preprocessed inputs, timed", "", "commands:"]
    lines += [f"  {n:<{width}}  {SUMMARIES.get(n, '')}" for n in ordered]
    lines += ["", EXIT_CODES]
    return "\n".join(lines) + "\n"


def build_parser(only: str | None = None):  # noqa: ANN201 - argparse is imported lazily
    """The parser with every command, or with `only` that one (a command's module may import heavy packages such
    as torch; `unetpp infer` on an ONNX model should not pay for them at start-up)."""
    import argparse

    from unetpp.cli.options import Formatter, Parser

    parser = argparse.ArgumentParser(prog="unetpp", description=DESCRIPTION, epilog=EXIT_CODES,
                                     formatter_class=Formatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(overview())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        sys.stderr.write(f"usage: unetpp COMMAND [options]\nunetpp: error: unknown command {argv[0]!r}; expected "
                         f"one of {', '.join(COMMANDS)} (unetpp --help lists them)\n")
        return 2
    parser = build_parser(argv[0])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if not getattr(args, "_run", None):
        sys.stdout.write(overview())
        return 2
    cli_handler()  # the library's notices (logging, the `unetpp` logger) on stderr as `unetpp: ...`
    try:
        return int(args._run(args) or 0)
    except UnetppError as exc:
        print(f"unetpp {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"unetpp {args.command}: interrupted; completed outputs are kept, rerun to resume", file=sys.stderr)
        return 130
    except OSError as exc:  # a file-system error no layer below turned into a message: still no traceback
        where = f" {exc.filename}" if exc.filename else ""
        print(f"unetpp {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
