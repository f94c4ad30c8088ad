"""`unetpp evaluate RESULTS MASKS`: the guide's IoU, then upstream's IoU and Dice."""

from __future__ import annotations

import argparse
from pathlib import Path

from unetpp.data.paths import read_ids
from unetpp.eval.evaluate import evaluate


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score <id>_0.bin/.npy outputs against dsb2018_96/masks/0",
        description="Print `IoU: x` as the guide (logits > 0.5, per-image IoU, mean), then upstream's IoU "
        "(sigmoid > 0.5, pooled per batch of 16) and Dice.",
    )
    p.add_argument("results", type=Path, help="folder of <id>_0.bin/.npy outputs, or a summary JSON (filesinfo)")
    p.add_argument("masks", type=Path, help="folder of ground-truth masks, e.g. dsb2018_96/masks/0")
    p.add_argument("--ids", type=Path, default=None, help="ids file: every listed id must have a result")
    p.add_argument("--csv", type=Path, default=None, help="write per-image scores to this CSV")
    return p


def run(args: argparse.Namespace) -> int:
    ids = read_ids(args.ids) if args.ids else None
    r = evaluate(args.results, args.masks, ids=ids, csv_path=args.csv)
    print(f"IoU: {r['iou_guide']:.4f}")
    print(f"upstream IoU (sigmoid > 0.5, pooled per batch of 16): {r['iou_upstream']:.4f}")
    print(f"Dice (logits > 0.5, per-image mean): {r['dice']:.4f}")
    print(f"images: {r['n_images']}" + (f"; per-image CSV: {args.csv}" if args.csv else ""))
    return 0
