"""`unetpp prepare SRC DST`: DSB2018 stage1_train -> dsb2018_96 (images/, masks/0/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetpp.cli.options import add_overwrite, count
from unetpp.data.paths import read_ids
from unetpp.data.prepare import find_stage1_train, prepare_dsb2018


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "prepare",
        help="resize DSB2018 stage1_train to the dsb2018_96 layout",
        description="Convert stage1_train/<id>/{images,masks} to DST/images/<id>.png and DST/masks/0/<id>.png "
        "as upstream preprocess_dsb2018.py (BGR, INTER_LINEAR, union of instance masks). Reruns skip done ids.",
    )
    p.add_argument("src", type=Path, help="the stage1_train folder, or a dataset root holding stage1_train/")
    p.add_argument("dst", type=Path, help="output root, e.g. inputs/dsb2018_96")
    p.add_argument("--size", type=count(1), default=96, help="output side in pixels (default 96)")
    p.add_argument("--ids", type=Path, default=None, help="only the ids listed in this file (one per line)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite(p)
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.core.runfolder import RunFolder, refuse_overlap
    from unetpp.data.prepare import list_sample_ids

    stage1 = find_stage1_train(args.src)
    refuse_overlap(args.dst, [stage1, args.src], what="DST")
    ids = read_ids(args.ids) if args.ids else None
    planned = [args.dst / sub / f"{i}.png" for i in (ids or list_sample_ids(stage1)) for sub in ("images", "masks/0")]
    failures: list[dict[str, str]] = []
    settings = {"size": args.size, "source": str(stage1.resolve())}
    with RunFolder(args.dst, settings, overwrite=args.overwrite, command="prepare", files=planned,
                   legacy_patterns=("images/*.png", "masks/0/*.png")) as folder:
        written = prepare_dsb2018(stage1, args.dst, size=args.size, ids=ids, progress=not args.no_progress,
                                  failures=failures)
        folder.finish({"written": written, "failed": len(failures)}, failed=len(failures))
    total = len(list((args.dst / "images").glob("*.png")))
    print(f"prepared {written} new sample(s) from {stage1} into {args.dst} ({total} images there in all)")
    return report_failures("prepare", "sample", failures)


def report_failures(command: str, what: str, failures: list[dict[str, str]]) -> int:
    """List items that failed on stderr; the exit code: 1 when any did, else 0."""
    if not failures:
        return 0
    lines = "\n".join(f"  {f['id']}: {f['error']}" for f in failures)
    print(f"unetpp {command}: error: {len(failures)} {what}(s) failed, the others completed:\n{lines}",
          file=sys.stderr)
    return 1
