"""`unetpp infer --model M --input DIR --output DIR`: ais_bench's offline inference on CPUs and GPUs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from unetpp.core import ENGINES
from unetpp.core.summary import format_summary
from unetpp.errors import InputError, expected_found
from unetpp.infer.run import OUTFMTS, PURE_DATA_TYPES, pick_backend, run_inference
from unetpp.runtimes import known_runtimes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "infer",
        help="run a model over .bin/.npy inputs, write <name>_0.bin per input and a summary JSON",
        description="The guide's ais_bench step. Inputs are sorted and batched; a short last batch is padded and "
        "its padding is not written. Without --input: pure-inference mode (a generated input, --loop times).",
    )
    p.add_argument("--model", type=Path, required=True, help=".onnx (onnxruntime) or .pt/.pth (torch)")
    p.add_argument("--input", default=None, help="folder(s) or file(s) of .bin/.npy, comma-separated")
    p.add_argument("--output", type=Path, required=True, help="output root folder")
    p.add_argument("--output-dirname", default=None, help="result folder name (default: YYYY_mm_dd-HH_MM_SS)")
    p.add_argument("--outfmt", choices=OUTFMTS, default="BIN", type=str.upper)
    p.add_argument("--batchsize", type=int, default=1)
    p.add_argument("--loop", type=int, default=1, help="inferences per batch (default 1)")
    p.add_argument("--warmup-count", type=int, default=1, help="warm-up calls, not counted (default 1)")
    p.add_argument("--backend", choices=known_runtimes(), default=None,
                   help="default: from the model suffix (.onnx -> onnxruntime, .pt/.pth -> torch)")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads (default: all cores; --engine ray: 1 per worker)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="torch backend only")
    p.add_argument("--pure-data-type", choices=PURE_DATA_TYPES, default="zero")
    p.add_argument("--resume", action="store_true", help="skip inputs whose output exists with the right size")
    p.add_argument("--no-progress", action="store_true")
    add_engine_args(p, "same batches and outputs")
    return p


def add_engine_args(p: argparse.ArgumentParser, what: str) -> None:
    """--engine, --address, --num-workers, --num-gpus: shared by the commands that can run on Ray."""
    g = p.add_argument_group("scale-out (--engine ray; install with pip install 'unetpp[ray]')")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help=f"local: this process (default); ray: a pool of Ray workers, {what}")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, HOST:6379 or ray://HOST:10001 (default: start a local Ray)")
    g.add_argument("--num-workers", type=int, default=None,
                   help="Ray workers (default: the cluster's CPUs // --threads)")
    g.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per Ray worker (default 0)")


def ray_options(args: argparse.Namespace) -> Any:
    """RayOptions from the shared flags (--threads: per worker, default 1); with --engine local, None, and the
    Ray-only flags are an error."""
    if args.engine == "local":
        for flag, value in (("--address", args.address), ("--num-workers", args.num_workers),
                            ("--num-gpus", args.num_gpus or None)):
            if value is not None:
                raise InputError(expected_found(flag, "--engine ray", "--engine local"))
        return None
    from unetpp.core.ray import RayOptions, import_ray

    import_ray()  # without Ray: how to install it, before anything else
    opts = RayOptions(address=args.address, num_workers=args.num_workers, threads=args.threads or 1,
                      num_gpus=args.num_gpus, progress=not args.no_progress)
    opts.check()
    return opts


def backend_options(backend: str, threads: int | None, device: str | None, dtype: str | None) -> dict[str, Any]:
    """Map the shared flags onto each backend's own options."""
    opts: dict[str, Any] = {}
    if threads:
        opts["threads"] = threads
    if backend == "torch":
        if device:
            opts["device"] = device.upper()
        if dtype:
            opts["dtype"] = dtype
        return opts
    if dtype and dtype != "fp32":
        raise InputError(expected_found("--dtype", f"fp32 with {backend} (it runs the model file's precision)",
                                        dtype, "use --backend torch for fp16/bf16"))
    if backend == "onnxruntime" and device:
        opts["providers"] = device
    elif device:
        opts["device"] = device.upper()
    return opts


def run(args: argparse.Namespace) -> int:
    backend = pick_backend(args.model, args.backend)
    inputs = [Path(s) for s in args.input.split(",") if s] if args.input is not None else None
    common = dict(output_dirname=args.output_dirname, outfmt=args.outfmt, batchsize=args.batchsize, loop=args.loop,
                  warmup_count=args.warmup_count, backend=backend, resume=args.resume, progress=not args.no_progress)
    opts = ray_options(args)
    if opts is None:
        summary = run_inference(args.model, inputs, args.output, pure_data_type=args.pure_data_type,
                                backend_options=backend_options(backend, args.threads, args.device, args.dtype),
                                **common)
    else:
        from unetpp.core.infer_job import run_inference_ray

        summary = run_inference_ray(args.model, inputs, args.output, ray_options=opts,
                                    backend_options=backend_options(backend, opts.threads, args.device, args.dtype),
                                    **common)
    print(format_summary(summary, summary["summary_path"]))
    if summary.get("failed"):
        lines = [f"  {f['file']}: {f['error']}" for f in summary["failed"]]
        print(f"unetpp infer: error: {len(lines)} input(s) failed, the others completed:\n" + "\n".join(lines),
              file=sys.stderr)
        return InputError.exit_code
    return 0
