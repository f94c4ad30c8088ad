"""`unetpp run`: the main job."""

from __future__ import annotations

import argparse

from unetpp.run import format_report, run_job


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="the whole chain: prepare, export, preprocess, infer, evaluate, report",
                       description="Run the guide's chain on DSB2018 (a generated synthetic set when none is found).")
    p.add_argument("--data", help="dataset root holding stage1_train/ and val_ids.txt (default: $UNETPP_DATA, "
                   "./data/dsb2018; none found -> a small synthetic set)")
    p.add_argument("--checkpoint", help="checkpoint (.pt of unetpp or upstream model.pth); default: the shipped one")
    p.add_argument("--out", default="runs/main", help="output folder (default: runs/main)")
    p.add_argument("--ids", help="ids to evaluate (default: <data>/val_ids.txt)")
    p.add_argument("--batchsize", type=int, default=16)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int)
    return p


def run(args: argparse.Namespace) -> int:
    report = run_job(data=args.data, checkpoint=args.checkpoint, out=args.out, batchsize=args.batchsize,
                     backend=args.backend, ids_file=args.ids, threads=args.threads)
    print(format_report(report))
    print(f"IoU: {report['iou_guide']:.4f}")
    return 0
