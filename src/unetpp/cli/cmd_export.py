"""`unetpp export [CHECKPOINT] -o OUT.onnx`: the guide's pth2onnx step, with a parity check against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from unetpp.cli.options import add_output, add_static_batch, count
from unetpp.cli.runtime_options import add_depth
from unetpp.config import DEFAULT_OPSET, MIN_OPSET, UP_MODES
from unetpp.model.export import export_onnx, format_report


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (opset 11, dynamic batch) and check it against PyTorch",
        description="Export with the TorchScript exporter (input actual_input_1, output output1, dynamic axis 0), "
        "run onnx.checker, compare onnxruntime with PyTorch on nuclei-like input and write OUT.parity.json.",
    )
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="unetpp .pt, upstream model.pth (with config.yml beside it) or a shipped model's name "
                        "(guide, instance); default: the shipped guide model")
    add_output(p, "the .onnx file to write (with --format bioimageio: the package .zip)", type=Path)
    p.add_argument("--format", choices=("onnx", "bioimageio"), default="onnx",
                   help="onnx: the guide's ONNX file; bioimageio: a BioImage Model Zoo package (format 0.5: "
                   "ONNX + TorchScript weights, test tensors, cover, README; see the README)")
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default="rgb",
                   help="bioimageio only: the package's input channel order (the flip to the checkpoint's BGR is "
                   "put inside the network)")
    p.add_argument("--opset", type=count(1), default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} up to the installed torch's highest (default {DEFAULT_OPSET})")
    add_static_batch(p)
    p.add_argument("--size", choices=("auto", "free", "fixed"), default="auto",
                   help="input height/width: free (any multiple of 16, checked at two sizes), fixed (the model's "
                   "96x96), auto (free for a model with its own scale rule, the instance model; fixed for the "
                   "guide's) (default: auto)")
    p.add_argument("--up-mode", choices=UP_MODES, default=None,
                   help="override the upsampling (upstream .pth files do not record it; default nearest)")
    add_depth(p)
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.atomic import check_writable
    from unetpp.core.outputs import refuse_foreign, refuse_same_file, undo_new_dirs
    from unetpp.errors import InputError, expected_found
    from unetpp.model.export import check_opset, parity_path
    from unetpp.model.resolve import model_source

    check_opset(args.opset)
    if args.format == "bioimageio" and args.depth is not None:
        raise InputError(expected_found("--depth with --format bioimageio", "no value (a package holds the full "
                                        "network)", args.depth))
    if args.format == "bioimageio" and args.batch is not None:
        raise InputError(expected_found("--static-batch with --format bioimageio", "no value (a package keeps "
                                        "the batch axis dynamic)", args.batch))
    source = model_source(args.checkpoint)
    outputs = [args.output] if args.format == "bioimageio" else [args.output, parity_path(args.output)]
    for out in outputs:
        refuse_same_file(out, [source])
    refuse_foreign(outputs, reports=[parity_path(args.output)])
    with undo_new_dirs(args.output):
        check_writable(args.output)
        if args.format == "bioimageio":
            from unetpp.zoo.export import export_bioimageio
            from unetpp.zoo.export import format_report as format_zoo_report

            report = export_bioimageio(source, args.output, opset=args.opset, channel_order=args.channel_order,
                                       up_mode=args.up_mode)
            print(format_zoo_report(report))
            return 0
        report = export_onnx(source, args.output, opset=args.opset, batch=args.batch, up_mode=args.up_mode,
                             depth=args.depth, dynamic_size={"auto": None, "free": True, "fixed": False}[args.size])
    print(format_report(report))
    return 0
