"""`unetpp train-instance`: the instance-aware model (foreground + border) on nucleus-normalised random crops."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetpp.cli.options import add_output, count
from unetpp.errors import InputError, expected_found
from unetpp.train.instance_model import InstanceTrainConfig

_D = InstanceTrainConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-instance",
        help="train the 2-output instance model (foreground, border) on nucleus-normalised crops of train_ids",
        description="Train NestedUNet with two outputs (0 foreground, 1 border band of each nucleus) from the "
        "per-nucleus masks of stage1_train, initialised from the shipped 1-output checkpoint. Each image is scaled "
        "so that its median nucleus covers --target-area pixels; training samples are random --crop crops with a "
        "scale jitter and modality augmentation. The last --holdout train ids are held out for model selection "
        "(val ids are never read). Writes OUT/log.csv, OUT/best.pt (best held-out mAP), OUT/latest.pt (every "
        "epoch), OUT/last.pt (full state for --resume) and OUT/instances_cache.npz (the rescaled data).",
    )
    p.add_argument("--data", type=Path, default=None,
                   help="dataset root holding stage1_train/ and optionally train_ids.txt (else the guide's split "
                   "shipped with unetpp; default: $UNETPP_DATA or ./data/dsb2018)")
    add_output(p, "output folder for log.csv, best.pt, latest.pt, last.pt", type=Path, dest="out")
    p.add_argument("--epochs", type=count(1), default=_D.epochs, help=f"epochs (default {_D.epochs})")
    p.add_argument("--batch-size", type=count(1), default=_D.batch_size, help=f"batch size (default {_D.batch_size})")
    p.add_argument("--lr", type=float, default=_D.lr, help=f"initial Adam learning rate (default {_D.lr})")
    p.add_argument("--min-lr", type=float, default=_D.min_lr, help=f"cosine floor (default {_D.min_lr})")
    p.add_argument("--weight-decay", type=float, default=_D.weight_decay,
                   help=f"Adam weight decay (default {_D.weight_decay})")
    p.add_argument("--seed", type=int, default=_D.seed, help=f"seed for crops, order and augmentation ({_D.seed})")
    p.add_argument("--crop", type=int, default=_D.crop, help=f"crop side in pixels, a multiple of 16 ({_D.crop})")
    p.add_argument("--target-area", type=float, default=_D.target_area,
                   help=f"median nucleus area in model-input pixels after scaling (default {_D.target_area:g})")
    p.add_argument("--jitter", type=float, nargs=2, default=list(_D.jitter), metavar=("LO", "HI"),
                   help=f"scale jitter range, drawn log-uniformly (default {_D.jitter[0]} {_D.jitter[1]})")
    p.add_argument("--crop-area", type=float, default=None, metavar="PX",
                   help="crops per image per epoch = ceil(scaled H*W / PX), at most 16 (default: one per image; "
                   "e.g. 65536 gives a 1024x1024 image at scale 0.8 ten crops)")
    p.add_argument("--crop-nuclei", type=float, default=None, metavar="N",
                   help="with --crop-area: one more crop per N nuclei of an image (crowded images give more crops; "
                   "default: off)")
    p.add_argument("--max-crops", type=count(1), default=_D.max_crops,
                   help=f"crops per image per epoch at most (default {_D.max_crops})")
    p.add_argument("--steps-per-epoch", type=count(1), default=None, metavar="K",
                   help="end each epoch after K batches, a fresh seeded subset of the crops each epoch (sizes epochs "
                   "on a slow machine without changing the sampling; default: one pass over the crops)")
    p.add_argument("--deep-supervision", action="store_true",
                   help="a head on each of X0,1..X0,4, losses averaged (UNet++'s training mode; lets predict prune "
                   "the network with --depth); the full-depth head is the one scored")
    p.add_argument("--augment-preset", choices=("v1", "v2", "v3"), default=_D.augment_preset,
                   help="appearance augmentation: v1 (the first shipped model's), v2 (adds dim-nucleus contrast "
                   "fields, uneven illumination, defocus, stain-vector jitter and synthetic H&E) or v3 (v2 plus "
                   f"pale, haematoxylin-faded nuclei and local stain gradients on light crops; default "
                   f"{_D.augment_preset})")
    p.add_argument("--tnbc", type=Path, default=None, metavar="DIR",
                   help="also train on the TNBC H&E tiles (images/NN_k.jpg, labels/NN_k_label.png) of the training "
                   "patients in unetpp/data/splits/tnbc_train_patients.txt, at the same nucleus-normalised scale "
                   "(CC BY 4.0: a model trained with it must credit the dataset, see its SOURCE.md)")
    p.add_argument("--tnbc-weight", type=float, default=_D.extra_weight, metavar="W",
                   help="crops per TNBC tile per epoch = ceil(W x what the DSB2018 rule (--crop-area, --crop-nuclei, "
                   f"--max-crops) gives it) (default {_D.extra_weight:g})")
    p.add_argument("--selection", default=None, metavar="IDS",
                   help="hold out these train ids for model selection ('shipped' = the stratified quarter in "
                   "unetpp/data/splits/selection_ids.txt) instead of the last --holdout")
    p.add_argument("--warmup-epochs", type=int, default=_D.warmup_epochs,
                   help=f"linear rise of the rate from lr/10 over these epochs (default {_D.warmup_epochs})")
    p.add_argument("--ema", type=float, default=_D.ema, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per step, e.g. 0.998) and "
                   "evaluate, select and save it (default 0: off)")
    p.add_argument("--border-weight", type=float, default=_D.border_weight,
                   help=f"weight of the border channel's loss (default {_D.border_weight})")
    p.add_argument("--holdout", type=int, default=_D.holdout,
                   help=f"hold out the last N train ids for model selection (default {_D.holdout}; with --limit at "
                   "most a quarter of the ids)")
    p.add_argument("--view-size", type=int, default=_D.view_size,
                   help=f"side of the centre crop scored per held-out image (default {_D.view_size})")
    p.add_argument("--init", default=_D.init,
                   help="checkpoint to start from: 'shipped' (default), a path to a guide (1-output) or "
                        "instance (2-output) checkpoint, or 'none' (random)")
    p.add_argument("--bn-recalibrate", type=int, default=0, metavar="N",
                   help="before each held-out evaluation, re-estimate BatchNorm statistics over N fixed un-augmented "
                   "training crops (eval-mode scores swing while the rate is high; 0 = off, the default; may change "
                   "on --resume: it does not change the weights' trajectory)")
    p.add_argument("--no-augment", action="store_true", help="no geometric or modality augmentation")
    _add_speed_options(p)
    p.add_argument("--keep-epochs", action="store_true",
                   help="also save each epoch's (averaged) weights as OUT/epochs/epoch_NNN.pt, for selection later")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt (same options required)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop cleanly after the epoch that crosses S seconds (state saved; --resume continues)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N train ids (smoke tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-epoch lines are still printed)")
    return p


def _add_speed_options(p: argparse.ArgumentParser) -> None:
    """Where and how fast: device, threads, crop workers, bf16, the data cache, memory layout, compile."""
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training device (default cpu)")
    p.add_argument("--threads", type=count(1), default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--prefetch", type=int, default=2, metavar="N",
                   help="batches cut and augmented ahead in a background thread (default 2; 0 = in the training "
                   "thread)")
    p.add_argument("--workers", type=count(0), default=0, metavar="N",
                   help="crop worker processes (default 0: crops are made in the training process and its prefetch "
                   "thread; use several on a machine with many cores beside a GPU)")
    p.add_argument("--bf16", action="store_true",
                   help="with --device cuda: forward and loss under bf16 autocast (weights stay fp32)")
    p.add_argument("--cache", type=Path, default=None, metavar="NPZ",
                   help="the rescaled training data, read if it matches the ids and parameters, else built and "
                   "written there (default OUT/instances_cache.npz); lets runs share one")
    p.add_argument("--no-channels-last", action="store_true",
                   help="keep NCHW tensors (channels-last is faster with oneDNN on the CPU and is the default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (+~10%% crops/s on "
                   "this CPU after a ~1-2 minute compile at each start)")


def run(args: argparse.Namespace) -> int:
    import torch

    from unetpp.data.paths import resolve_data_dir, split_ids
    from unetpp.data.prepare import find_stage1_train
    from unetpp.train.instance_loop import TrainSpeed, train_instance

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(expected_found("--threads", "a positive number", args.threads))
        torch.set_num_threads(args.threads)
    root = resolve_data_dir(args.data)
    train_ids = split_ids(root, "train")
    holdout = args.holdout
    if args.limit is not None:
        if args.limit < 2:
            raise InputError(expected_found("--limit", "at least 2 train ids", args.limit))
        train_ids = train_ids[: args.limit]
        holdout = min(holdout, max(1, args.limit // 4))
    cfg = InstanceTrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
        weight_decay=args.weight_decay, seed=args.seed, crop=args.crop, target_area=args.target_area,
        jitter=(float(args.jitter[0]), float(args.jitter[1])), border_weight=args.border_weight,
        augment=not args.no_augment, holdout=holdout, view_size=args.view_size, init=args.init,
        crop_area=args.crop_area, crop_nuclei=args.crop_nuclei, max_crops=args.max_crops,
        deep_supervision=args.deep_supervision, augment_preset=args.augment_preset, selection=args.selection,
        warmup_epochs=args.warmup_epochs, ema=args.ema,
        steps_per_epoch=args.steps_per_epoch, extra_data="tnbc" if args.tnbc is not None else None,
        extra_weight=args.tnbc_weight,
    )
    if args.prefetch < 0:
        raise InputError(expected_found("--prefetch", "0 or more batches", args.prefetch))
    speed = TrainSpeed(channels_last=not args.no_channels_last, prefetch=args.prefetch,
                       compile=args.compile, workers=args.workers, bf16=args.bf16)
    from unetpp.cli.cmd_train import TRAIN_FILES, TRAIN_LEGACY
    from unetpp.core.runfolder import RunFolder

    with RunFolder(args.out, None, command="train-instance", files=[args.out / n for n in TRAIN_FILES],
                   legacy_names=TRAIN_LEGACY) as folder:
        result = train_instance(cfg, find_stage1_train(root), args.out, train_ids, device=args.device,
                                resume=args.resume, time_limit_s=args.time_limit, progress=not args.no_progress,
                                command="unetpp " + " ".join(sys.argv[1:]), bn_recalibrate=args.bn_recalibrate,
                                speed=speed, keep_epochs=args.keep_epochs, cache=args.cache,
                                extra_root=args.tnbc)
        folder.finish({"epochs_completed": result["epochs_completed"]})
    state = "stopped at the time limit" if result["stopped_early"] else "done"
    best = result["best_heldout_map"]
    tail = (f"best epoch {result['best_epoch']} (held-out mAP {best:.4f}) -> {args.out / 'best.pt'}"
            if best is not None else "no epoch completed")
    print(f"{state}: {result['epochs_completed']}/{result['epochs']} epochs in {args.out}; {tail}", flush=True)
    return 0
