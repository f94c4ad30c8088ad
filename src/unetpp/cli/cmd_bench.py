"""`unetpp bench`: a sweep of backends x batch sizes with a Markdown/CSV/PNG report."""

from __future__ import annotations

import argparse
import sys

from unetpp.bench import DEFAULT_BATCH_SIZES, parse_specs, run_sweep, write_report
from unetpp.cli.options import add_output, add_overwrite, add_threads, add_warmup, count
from unetpp.errors import InputError, expected_found


def _sizes(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, found {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="sweep backends x batch sizes; write per-cell JSON, results.csv/.md, a plot",
                       description="Measure each backend spec NAME[:key=val,...] (e.g. onnxruntime, openvino:hint="
                       "latency, onnxruntime:int8=q.onnx, torch:device=cuda,dtype=fp16,cuda_graphs=1, any with "
                       "label=NAME or model=PATH) at each batch size: compute-only and end-to-end throughput, latency "
                       "mean/median/p90/p99, share of a GEMM-probe peak, guide IoU. A failing cell is recorded and "
                       "the sweep goes on. --report-only rebuilds the report from the cell JSONs of --from runs.")
    p.add_argument("--backends", nargs="+", default=["onnxruntime"], metavar="SPEC",
                   help="backend specs NAME[:key=val,...], one column each")
    p.add_argument("--batch-sizes", type=_sizes, default=list(DEFAULT_BATCH_SIZES), metavar="N,N,...",
                   help="default 1,4,8,16,32")
    p.add_argument("--inputs", metavar="DIR", help="preprocessed inputs (.bin/.npy)")
    p.add_argument("--masks", metavar="DIR", help="masks <id>.png to score the outputs (dsb2018_96/masks/0)")
    p.add_argument("--model", help="model for onnxruntime/openvino (.onnx or .xml) unless a spec says model=")
    p.add_argument("--checkpoint", help="checkpoint for torch (default: the shipped one); exported to ONNX when "
                   "no --model is given")
    add_threads(p, "threads for every backend without its own threads= (and the probe; default: all cores)")
    add_warmup(p, 2, "warm-up calls per cell, excluded")
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="measure each cell at least this long (default 2); the GEMM yardstick times each library this "
                   "long too, at most 1 s")
    p.add_argument("--min-iters", type=count(1), default=10, help="and at least this many calls (default 10)")
    p.add_argument("--repeats", type=count(1), default=1, help="measure the whole sweep this many times, round-robin; "
                   "each cell reports its median round (default 1)")
    add_output(p, "the run folder: cells/, machine.json, results.md/.csv, throughput.png", dest="out", metavar="DIR")
    add_overwrite(p)
    p.add_argument("--baseline", help="label of the PyTorch eager column for ratios (default: the first torch spec "
                   "without compile/cuda_graphs)")
    p.add_argument("--report-only", action="store_true", help="measure nothing; report the cells of --from runs")
    p.add_argument("--from", dest="sources", action="append", metavar="DIR",
                   help="with --report-only: a run folder (or its cells/); repeat to merge runs (default: --output)")
    return p


def run(args: argparse.Namespace) -> int:
    failed: list[dict] = []
    if args.report_only:
        from pathlib import Path

        from unetpp.bench.sweep import REPORT_FILES
        from unetpp.core.outputs import refuse_unlisted

        refuse_unlisted(args.out, [Path(args.out) / n for n in REPORT_FILES], command="bench")
        paths = write_report(args.sources or [args.out], args.out, baseline=args.baseline)
    else:
        if not args.inputs:
            raise InputError(expected_found("--inputs", "a folder of preprocessed .bin/.npy inputs", "none given",
                                            "run `unetpp preprocess` first"))
        cells = run_sweep(parse_specs(args.backends), args.inputs, args.out, batch_sizes=args.batch_sizes,
                          masks=args.masks, model=args.model, checkpoint=args.checkpoint, threads=args.threads,
                          warmup=args.warmup, min_seconds=args.min_seconds, min_iters=args.min_iters,
                          baseline=args.baseline, repeats=args.repeats, overwrite=args.overwrite)
        failed = [c for c in cells if c["status"] != "ok"]
        names = ("cells/", "machine.json", "results.md", "results.csv", "throughput.png")
        paths = {n: f"{args.out}/{n}" for n in names}
    for p in paths.values():
        print(f"wrote {p}")
    if failed:
        lines = [f"  {c['label']} bs {c['batch_size']}: {c.get('error')}" for c in failed]
        print(f"unetpp bench: error: {len(failed)} cell(s) failed, the others completed:\n" + "\n".join(lines),
              file=sys.stderr)
        return 1
    return 0
