"""`unetpp preprocess IMAGES OUT --ids FILE`: prepared PNGs -> network inputs (<id>.bin or <id>.npy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unetpp.cli.options import add_overwrite, count
from unetpp.config import PreprocessConfig
from unetpp.data.paths import read_ids
from unetpp.data.preprocess import preprocess_folder


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "preprocess",
        help="write normalised network inputs (.bin/.npy) for a list of ids",
        description="Read IMAGES/<id>.png (BGR), apply ImageNet Normalize in BGR order and the extra /255, and "
        "write OUT/<id>.bin (raw little-endian float32, 3xSxS) or OUT/<id>.npy.",
    )
    p.add_argument("images", type=Path, help="folder of prepared <id>.png images, e.g. dsb2018_96/images")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--ids", type=Path, default=None,
                   help="ids file, one per line, e.g. val_ids.txt (default: every .png in IMAGES)")
    p.add_argument("--fmt", choices=("bin", "npy"), default="bin", help="output format (default bin)")
    p.add_argument("--size", type=count(1), default=PreprocessConfig.size, help="expected image side (default 96)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite(p)
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.cli.cmd_prepare import report_failures
    from unetpp.core.runfolder import RunFolder, refuse_overlap

    refuse_overlap(args.out, [args.images], what="OUT")
    if args.ids:
        ids = read_ids(args.ids)
    else:
        ids = sorted(p.stem for p in args.images.glob("*.png")) if args.images.is_dir() else []
    cfg = PreprocessConfig(size=args.size)
    failures: list[dict[str, str]] = []
    settings = {"fmt": args.fmt, "size": args.size, "images": str(args.images.resolve())}
    with RunFolder(args.out, settings, overwrite=args.overwrite, command="preprocess",
                   files=[args.out / f"{i}.{args.fmt}" for i in ids], legacy_patterns=("*.bin", "*.npy")) as folder:
        n = preprocess_folder(args.images, args.out, ids, fmt=args.fmt, cfg=cfg, progress=not args.no_progress,
                              failures=failures)
        folder.finish({"written": n, "failed": len(failures)}, failed=len(failures))
    print(f"wrote {n} {args.fmt} input(s) of shape {cfg.input_shape} to {args.out}")
    return report_failures("preprocess", "image", failures)
