"""`unetpp run`: the main job."""

from __future__ import annotations

import argparse

from unetpp.cli.options import add_batch_size, add_output, add_threads
from unetpp.run import format_report, run_job


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="the whole chain: prepare, export, preprocess, infer, evaluate, report",
                       description="Run the guide's chain on DSB2018 (a generated synthetic set when none is found).")
    p.add_argument("--data", help="dataset root holding stage1_train/ and optionally val_ids.txt (else the guide's "
                   "split shipped with unetpp) (default: $UNETPP_DATA, else "
                   "./data/dsb2018; a path given that does not hold the dataset is an error; nothing given and "
                   "nothing at ./data/dsb2018 -> a small synthetic set, said so)")
    p.add_argument("--checkpoint", help="checkpoint (.pt of unetpp or upstream model.pth); default: the shipped one")
    add_output(p, "output folder (default: runs/main)", required=False, default="runs/main")
    p.add_argument("--ids", help="ids to evaluate (default: <data>/val_ids.txt, else the guide's 134 val ids "
                   "shipped with unetpp)")
    add_batch_size(p, 16, "inputs per runtime call in the infer stage", old="--batchsize")
    p.add_argument("--backend", default="onnxruntime", help="runtime of the infer stage: onnxruntime, openvino or "
                   "torch")
    add_threads(p)
    return p


def run(args: argparse.Namespace) -> int:
    report = run_job(data=args.data, checkpoint=args.checkpoint, out=args.output, batchsize=args.batch_size,
                     backend=args.backend, ids_file=args.ids, threads=args.threads)
    print(format_report(report))
    print(f"IoU: {report['iou_guide']:.4f}")
    return 0
