"""`unetpp evaluate`: two modes.

- guide mode, `unetpp evaluate RESULTS MASKS`: the guide's IoU on 96x96 logits, then upstream's IoU and Dice;
- full-resolution mode, `unetpp evaluate --instances PRED_DIR --gt STAGE1_TRAIN`: `unetpp predict`'s label PNGs at
  the original size against the per-nucleus masks: pixel IoU, Dice, the DSB2018 mAP, AP@0.5/0.75, count error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetpp.cli.options import add_output
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.errors import InputError
from unetpp.eval.evaluate import evaluate

GUIDE_USAGE = "RESULTS MASKS (guide mode)"
INSTANCE_USAGE = "--instances PRED_DIR [--gt DIR] (full-resolution mode)"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score <id>_0.bin/.npy outputs (guide mode) or predict's label PNGs at full size (--instances)",
        description="Guide mode: print `IoU: x` as the guide (logits > 0.5, per-image IoU, mean), then upstream's "
        "IoU (sigmoid > 0.5, pooled per batch of 16) and Dice. Full-resolution mode (--instances): pixel IoU, Dice, "
        "the DSB2018 instance mAP over IoU 0.50-0.95, AP@0.5, AP@0.75 and the nuclei count error; writes "
        "REPORT_DIR/per_image.csv and summary.json, with --overlays also overlays/<id>.png and index.html.",
    )
    p.add_argument("results", type=Path, nargs="?", help="guide mode: folder of <id>_0.bin/.npy outputs, or a "
                   "summary JSON (filesinfo)")
    p.add_argument("masks", type=Path, nargs="?", help="guide mode: folder of ground-truth masks, e.g. "
                   "dsb2018_96/masks/0")
    p.add_argument("--ids", type=Path, default=None, help="ids file: every listed id must have a result")
    p.add_argument("--csv", type=Path, default=None, help="guide mode: write per-image scores to this CSV")
    g = p.add_argument_group("full-resolution mode")
    g.add_argument("--instances", type=Path, default=None, metavar="PRED_DIR",
                   help="folder written by `unetpp predict` (<id>_labels.png, <id>_mask.png)")
    g.add_argument("--gt", type=Path, default=None, metavar="DIR",
                   help="stage1_train, or a folder holding it (default: $UNETPP_DATA, else ./data/dsb2018); or a "
                   "folder of label maps labels/<id>_label.png (0 background, one id per nucleus; images/<id>.* "
                   "beside it), e.g. shared/data/tnbc")
    add_output(g, "where per_image.csv, summary.json (and overlays) go (default: PRED_DIR/eval)", required=False,
               type=Path, default=None, metavar="REPORT_DIR")
    g.add_argument("--overlays", action="store_true",
                   help="also write overlays/<id>.png (green: predicted, magenta: true contours) and index.html")
    return p


def run(args: argparse.Namespace) -> int:
    if args.instances is not None:
        return _run_instances(args)
    extra = [f for f, v in (("--gt", args.gt), ("-o/--output", args.output), ("--overlays", args.overlays)) if v]
    if args.results is None or args.masks is None or extra:
        found = f"{', '.join(extra)} without --instances" if extra else "fewer than two positional arguments"
        raise InputError(f"evaluate arguments: expected {GUIDE_USAGE} or {INSTANCE_USAGE}, found {found}")
    ids = read_ids(args.ids) if args.ids else None
    if args.csv is not None:
        from unetpp.atomic import check_writable
        from unetpp.core.outputs import csv_header, refuse_foreign
        from unetpp.eval.evaluate import CSV_FIELDS

        refuse_foreign([args.csv], ours=lambda p: csv_header(p) == ",".join(CSV_FIELDS))
        check_writable(args.csv)
    _warn_unfinished(args.results)
    r = evaluate(args.results, args.masks, ids=ids, csv_path=args.csv)
    print(f"IoU: {r['iou_guide']:.4f}")
    print(f"upstream IoU (sigmoid > 0.5, pooled per batch of 16): {r['iou_upstream']:.4f}")
    print(f"Dice (logits > 0.5, per-image mean): {r['dice']:.4f}")
    print(f"images: {r['n_images']}" + (f"; per-image CSV: {args.csv}" if args.csv else ""))
    return 0


def _warn_unfinished(results: Path) -> None:
    from unetpp.core.runfolder import unfinished_note

    note = unfinished_note(results)
    if note:
        print(note, file=sys.stderr)


def _run_instances(args: argparse.Namespace) -> int:
    from unetpp.eval.instance_report import evaluate_full_resolution

    mixed = [f for f, v in (("RESULTS", args.results), ("MASKS", args.masks), ("--csv", args.csv)) if v]
    if mixed:
        raise InputError(f"evaluate arguments: expected {GUIDE_USAGE} or {INSTANCE_USAGE}, found both "
                         f"(--instances with {', '.join(mixed)}); full-resolution mode writes REPORT_DIR/per_image.csv")
    from unetpp.core.runfolder import RunFolder
    from unetpp.eval.instance_io import prediction_ids
    from unetpp.eval.instance_report import CSV_NAME, GALLERY_NAME, SUMMARY_NAME, default_report_dir

    gt = args.gt if args.gt is not None else resolve_data_dir(None)
    ids = read_ids(args.ids) if args.ids else None
    _warn_unfinished(args.instances)
    prediction_ids(args.instances)  # a missing PRED_DIR is refused before the report folder inside it is made
    report_dir = args.output if args.output is not None else default_report_dir(args.instances)
    with RunFolder(report_dir, None, command="evaluate",
                   files=[report_dir / n for n in (CSV_NAME, SUMMARY_NAME, GALLERY_NAME)]) as folder:
        r = evaluate_full_resolution(args.instances, gt, ids=ids, out_dir=report_dir, overlays=args.overlays)
        folder.finish({"n_images": r["n_images"]})
    for warning in r.get("warnings", []):
        print(f"unetpp evaluate: warning: {warning}", file=sys.stderr)
    print(f"DSB2018 mAP (IoU 0.50-0.95): {r['map']:.4f}")
    print(f"AP@0.50: {r['ap_50']:.4f}  AP@0.75: {r['ap_75']:.4f}")
    print(f"pixel IoU (full resolution, per-image mean): {r['pixel_iou']:.4f}  Dice: {r['dice']:.4f}")
    print(f"nuclei: predicted {r['n_pred']}, true {r['n_true']}; count error (mean abs per image): "
          f"{r['count_mae']:.2f}")
    out = r["outputs"]
    print(f"images: {r['n_images']}; per-image CSV: {out['csv']}; summary: {out['summary']}"
          + (f"; gallery: {out['gallery']}" if "gallery" in out else ""))
    return 0
