"""`unetpp train`: upstream's training recipe on the fixed train_ids/val_ids split; resumable and seeded."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from unetpp.cli.options import add_batch_size, add_output
from unetpp.config import TRAIN_LOSSES, TRAIN_OPTIMIZERS, UP_MODES, ModelConfig, TrainConfig
from unetpp.errors import InputError, expected_found

_D = TrainConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train NestedUNet (upstream's recipe) on DSB2018 train_ids, validating on val_ids",
        description="Train NestedUNet with upstream train.py's recipe (augmentation, BCEDice or Lovasz hinge, SGD or "
        "Adam, cosine schedule). Writes OUT/log.csv, OUT/best.pt (best guide val IoU, loadable by every other "
        "command) and OUT/last.pt (full state for --resume). Everything is derived from --seed: a resumed run ends "
        "in the same state as an uninterrupted one.",
    )
    p.add_argument("--data", type=Path, default=None,
                   help="dataset root holding stage1_train/ and optionally train_ids.txt and val_ids.txt (else the "
                   "guide's split shipped with unetpp; default: $UNETPP_DATA or ./data/dsb2018)")
    p.add_argument("--prepared", type=Path, default=None,
                   help="an already prepared dsb2018_96 folder (default: prepare into OUT/dsb2018_96)")
    add_output(p, "output folder for log.csv, best.pt, last.pt", dest="out", type=Path)
    p.add_argument("--epochs", type=int, default=_D.epochs, help=f"epochs (default {_D.epochs})")
    add_batch_size(p, _D.batch_size, f"images per training step (default {_D.batch_size})")
    p.add_argument("--loss", choices=TRAIN_LOSSES, default=_D.loss, help=f"loss (default {_D.loss})")
    p.add_argument("--optimizer", choices=TRAIN_OPTIMIZERS, default=_D.optimizer,
                   help=f"optimizer (default {_D.optimizer})")
    p.add_argument("--lr", type=float, default=_D.lr, help=f"initial learning rate (default {_D.lr})")
    p.add_argument("--min-lr", type=float, default=_D.min_lr, help=f"cosine floor (default {_D.min_lr})")
    p.add_argument("--momentum", type=float, default=_D.momentum, help=f"SGD momentum (default {_D.momentum})")
    p.add_argument("--weight-decay", type=float, default=_D.weight_decay,
                   help=f"weight decay (default {_D.weight_decay})")
    p.add_argument("--seed", type=int, default=_D.seed, help=f"seed for init, shuffling, augmentation ({_D.seed})")
    p.add_argument("--no-augment", action="store_true", help="train on un-augmented images")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training device (default cpu)")
    p.add_argument("--no-amp", action="store_true", help="on CUDA, train in fp32 instead of bf16 autocast")
    p.add_argument("--deterministic", action="store_true",
                   help="on CUDA, deterministic kernels (no cudnn.benchmark) so that --resume and reruns are exact")
    p.add_argument("--deep-supervision", action="store_true", help="4 heads, loss averaged, last head scored")
    p.add_argument("--up-mode", choices=UP_MODES, default="nearest", help="upsampling (default nearest, the guide's)")
    p.add_argument("--bn-recalibrate", action="store_true",
                   help="re-estimate BatchNorm statistics over the training images before each validation")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt (same options required)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop cleanly after the epoch that crosses S seconds (state saved; --resume continues)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers for augmentation (default: 0 on cpu, up to 6 on cuda)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N train ids (smoke tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no per-epoch lines")
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.core.runfolder import RunFolder
    from unetpp.data.paths import resolve_data_dir, split_ids

    root = resolve_data_dir(args.data)
    train_ids, val_ids = split_ids(root, "train"), split_ids(root, "val")
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(expected_found("--limit", "a positive number of train ids", args.limit))
        train_ids = train_ids[: args.limit]
    with RunFolder(args.out, None, command="train", files=[args.out / n for n in TRAIN_FILES],
                   legacy_names=TRAIN_LEGACY) as folder:
        result = _train(args, root, train_ids, val_ids)
        folder.finish({"epochs_completed": result["epochs_completed"]})
    state = "stopped at the time limit" if result["stopped_early"] else "done"
    best = result["best_val_iou_guide"]
    print(f"{state}: {result['epochs_completed']}/{result['epochs']} epochs in {args.out}; best epoch "
          f"{result['best_epoch']} (guide val IoU {best:.4f}, upstream {result['best_val_iou_upstream']:.4f}) "
          f"-> {args.out / 'best.pt'}" if best is not None else f"{state}: no epoch completed")
    return 0


# What a training writes into its folder (listed in the run folder's manifest); an older folder without a
# manifest that holds only such entries is a training folder too.
TRAIN_FILES = ("log.csv", "best.pt", "last.pt", "latest.pt", "instances_cache.npz")
TRAIN_LEGACY = ("*.pt", "*.csv", "*.npz", "*.json", "*.md", "dsb2018_96")


def _train(args: argparse.Namespace, root: Path, train_ids: list[str], val_ids: list[str]) -> dict:
    from unetpp.train.loop import train

    if args.prepared is not None:
        prepared = args.prepared
    else:
        from unetpp.data.prepare import find_stage1_train, prepare_dsb2018

        prepared = args.out / "dsb2018_96"
        prepare_dsb2018(find_stage1_train(root), prepared, size=96, ids=train_ids + val_ids,
                        progress=not args.no_progress)
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
        min_lr=args.min_lr, momentum=args.momentum, weight_decay=args.weight_decay, seed=args.seed,
        augment=not args.no_augment, bn_recalibrate=args.bn_recalibrate,
    )
    model_config = ModelConfig(deep_supervision=args.deep_supervision, up_mode=args.up_mode)
    workers = args.num_workers
    if workers is None:
        workers = 0 if args.device == "cpu" else max(0, min(6, (os.cpu_count() or 1) - 2))
    result = train(
        cfg, prepared, args.out, train_ids, val_ids, device=args.device, model_config=model_config,
        resume=args.resume, amp=not args.no_amp, time_limit_s=args.time_limit, progress=not args.no_progress,
        num_workers=workers, command="unetpp " + " ".join(sys.argv[1:]), deterministic=args.deterministic,
    )
    return result
