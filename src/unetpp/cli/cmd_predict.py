"""`unetpp predict IMAGE_OR_DIR... -o OUT`: full-resolution masks, nucleus labels and counts for any image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetpp.cli.options import add_batch_size, add_device, add_output, add_overwrite, add_threads
from unetpp.cli.runtime_options import (
    add_backend_option,
    add_depth,
    add_engine_args,
    add_precision,
    make_executor,
    runtime_flags,
)
from unetpp.runtimes import known_runtimes


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict", help="segment images of any size: <stem>_mask.png, _labels.png, _nuclei.csv, counts.csv",
        description="Segment PNG/TIFF/JPEG images (grey/RGB/RGBA, 8/16-bit, any size) at their own resolution with "
        "the shipped instance model (foreground + border channels: nuclei from seeds and a watershed) unless --model "
        "names another. tile: rescale so nuclei have the size the model learned (--scale), then blended 96x96 "
        "windows. resize: the guide's protocol (squeeze to 96x96, predict, resize the probability back). A 1-output "
        "model's nuclei are connected components split by a distance-transform cut. Images already complete in OUT "
        "are skipped. A multi-page TIFF is segmented page by page (<stem>_p<k>); a TIFF whose samples are not grey, "
        "grey+alpha, RGB or RGBA (e.g. 2 fluorescence channels in one page) fails alone: save each channel as a "
        "page of its own.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files or folders (a folder laid out as DSB2018 stage1_train gives its samples)")
    add_output(p, "output folder (a run folder: see --overwrite); not inside or around an input folder")
    p.add_argument("--ids", type=Path, default=None,
                   help="ids file (one per line): each folder is a root of <id>/images/<id>.png")
    p.add_argument("--mode", choices=("auto", "resize", "tile"), default="auto",
                   help="auto: tile for a model that states its training scale (the instance model), else resize "
                   "(the guide's) (default: auto)")
    p.add_argument("--scale", default="auto",
                   help="tile mode: auto (the model's own rule: nuclei@150 for the instance model, else fit, chosen "
                   "on train ids), fit (96/min(H,W)), area (96/sqrt(HW)), "
                   "nuclei[@A] (two passes: scale so the median nucleus covers A px, default 90) or a factor such as "
                   "0.5 (default: auto)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--window", type=int, default=None,
                   help="tile mode, a model with free height/width (the instance model): windows of at most this "
                   "many px (a multiple of 16; 96 = the 96x96 windows blended at --overlap); default: the whole "
                   "scaled image when it has at most 1 Mpx, else stitched windows of up to 512 px")
    p.add_argument("--backend", choices=known_runtimes(), default=None,
                   help="the runtime (default: the fastest verified one for a checkpoint, see --precision; a "
                   "checkpoint is exported or built once, into the model cache ~/.cache/unetpp)")
    add_precision(p)
    add_depth(p)
    add_backend_option(p)
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average each tile's 8 flips/rotations before the split (8x the "
                        "compute; default off)")
    p.add_argument("--model", default="instance",
                   help="a shipped model by name (instance, guide) or a .pt/.pth checkpoint, .onnx or .xml "
                        "(default: instance)")
    add_batch_size(p, 16, "tiles (or resized images) per runtime call", old="--batch")
    add_threads(p)
    add_device(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="foreground probability threshold: the seeds' t_fg for the instance model, the probability "
                   "mask's for a 1-output model (default: the model's own (the instance model's seed setting from "
                   "its metadata, 0.5 for the guide); predict_summary.json records the value applied)")
    p.add_argument("--min-area", type=int, default=None,
                   help="drop nuclei smaller than this many pixels of the image (default: the model's own "
                   "(the instance model's seed setting, in its input pixels, 10 for the guide); "
                   "predict_summary.json records the value applied)")
    p.add_argument("--no-split", action="store_true", help="nuclei = connected components, no split")
    p.add_argument("--bit16", choices=("stretch", "257"), default="stretch",
                   help="16-bit/float to 8-bit: stretch (0.1..99.9th percentile -> 0..255, default) or 257 (v/257)")
    p.add_argument("--save-prob", action="store_true", help="also write <stem>_prob.png (uint16, p * 65535)")
    p.add_argument("--overlays", action="store_true",
                   help="also write <stem>_overlay.png (predicted contours over the image) and OUT/index.html")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip images whose outputs are complete from a run with the same settings (default: on)")
    add_overwrite(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_args(p, "one image per work item")
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.api import load
    from unetpp.data.paths import read_ids
    from unetpp.predict.folder import check_paths, format_summary
    from unetpp.predict.image import PredictOptions

    options = PredictOptions(mode=args.mode, scale=args.scale, overlap=args.overlap, batch=args.batch_size,
                             threshold=args.threshold, min_area=args.min_area, split=not args.no_split,
                             save_prob=args.save_prob, bit16=args.bit16, overlay=args.overlays, tta=args.tta,
                             window=args.window)
    ids = read_ids(args.ids) if args.ids else None
    executor = make_executor(args, chunk_size=1)
    check_paths(args.inputs, args.output, ids)  # a bad folder is refused before a first-use build of the model
    with load(args.model, args.backend, device=args.device, threads=args.threads, precision=args.precision,
              depth=args.depth, runtime_options=lambda backend: runtime_flags(args, backend)) as model:
        summary = model.predict_folder(args.inputs, args.output, ids=ids, progress=not args.no_progress,
                                       executor=executor, overwrite=args.overwrite, resume=args.resume,
                                       **options.to_dict())
        choice = model.choice
    for note in summary.get("notes", []):
        print(f"unetpp predict: {note}", file=sys.stderr)
    print(format_summary(summary))
    print(f"runtime: {choice.line()}")
    return 1 if summary["n_failed"] else 0
