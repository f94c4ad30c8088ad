"""`unetpp infer --model M --input DIR --output DIR`: ais_bench's offline inference on CPUs and GPUs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetpp.cli.options import (
    add_batch_size,
    add_device,
    add_output,
    add_overwrite,
    add_threads,
    add_warmup,
    count,
)
from unetpp.cli.runtime_options import add_backend_option, add_engine_args, make_executor, runtime_flags
from unetpp.infer.run import PURE_DATA_TYPES, format_summary, run_inference
from unetpp.infer.work import OUTFMTS
from unetpp.runtimes import known_runtimes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "infer",
        help="run a model over .bin/.npy inputs, write <name>_0.bin per input and a summary JSON",
        description="The guide's ais_bench step. Inputs are sorted and batched; a short last batch is padded and "
        "its padding is not written. Without --input: pure-inference mode (a generated input, --loop times).",
    )
    p.add_argument("--model", type=Path, required=True, help=".onnx (onnxruntime) or .pt/.pth (torch)")
    p.add_argument("--input", default=None, help="folder(s) or file(s) of .bin/.npy, comma-separated (default: "
                   "none, pure-inference mode)")
    add_output(p, "output root folder; results go to OUTPUT/OUTPUT_DIRNAME", type=Path)
    p.add_argument("--output-dirname", default=None, help="result folder name (default: YYYY_mm_dd-HH_MM_SS)")
    p.add_argument("--outfmt", choices=OUTFMTS, default="BIN", type=str.upper, help="output file format")
    add_batch_size(p, 1, "inputs per runtime call", old="--batchsize")
    p.add_argument("--loop", type=count(1), default=1, metavar="N", help="inferences per batch")
    add_warmup(p, 1, "warm-up calls, not timed", old="--warmup-count")
    p.add_argument("--backend", choices=known_runtimes(), default=None,
                   help="default: from the model suffix (.onnx -> onnxruntime, .pt/.pth -> torch)")
    add_backend_option(p)
    add_threads(p, "intra-op threads (default: all cores; --engine ray: 1 per worker)")
    add_device(p)
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None,
                   help="torch backend only (default: fp32)")
    p.add_argument("--pure-data-type", choices=PURE_DATA_TYPES, default="zero",
                   help="without --input: the generated input")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip inputs whose output exists with the right size (default: on)")
    add_overwrite(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_args(p, "same batches and outputs")
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.runtimes import resolve_model

    backend, model = resolve_model(args.model, args.backend, checkpoint_backend="torch")
    inputs = [Path(s) for s in args.input.split(",") if s] if args.input is not None else None
    executor = make_executor(args)
    summary = run_inference(model, inputs, args.output, output_dirname=args.output_dirname, outfmt=args.outfmt,
                            batch_size=args.batch_size, loop=args.loop, warmup=args.warmup, backend=backend,
                            backend_options=runtime_flags(args, backend), pure_data_type=args.pure_data_type,
                            resume=args.resume, progress=not args.no_progress, executor=executor,
                            overwrite=args.overwrite)
    print(format_summary(summary, summary["summary_path"]))
    if summary.get("failed"):
        lines = [f"  {f['file']}: {f['error']}" for f in summary["failed"]]
        print(f"unetpp infer: error: {len(lines)} input(s) failed, the others completed:\n" + "\n".join(lines),
              file=sys.stderr)
        return 1
    return 0
