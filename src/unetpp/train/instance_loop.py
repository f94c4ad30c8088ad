"""Training the instance-aware model: random nucleus-normalised crops, seeded and resumable like train.loop.

Model selection uses a held-out slice of the *train* ids (the last `holdout` of them); val ids are never read here.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from unetpp.atomic import ensure_dir, file_sha256, write_text_atomic
from unetpp.config import PreprocessConfig
from unetpp.data.selection import resolve_selection
from unetpp.errors import InputError, expected_found
from unetpp.model.checkpoint import save_checkpoint, shipped_checkpoint
from unetpp.predict.seeds import SeedParams
from unetpp.train.appearance_v2 import AppearanceV2
from unetpp.train.device import resolve_device, set_cuda_determinism
from unetpp.train.ema import WeightEMA
from unetpp.train.he_augment import AppearanceV3
from unetpp.train.instance_data import (
    S_MAX,
    S_MIN,
    SCALE_RULE,
    InstanceCropDataset,
    InstanceData,
    build_instance_data,
    crops_per_image,
    heldout_views,
)
from unetpp.train.instance_eval import evaluate_heldout
from unetpp.train.instance_model import ChannelBCEDice, InstanceTrainConfig, init_instance_model
from unetpp.train.instance_targets import OUTPUTS, BorderParams
from unetpp.train.modality_augment import ModalityParams
from unetpp.train.prefetch import prefetch
from unetpp.train.sampling import EpochBatchSampler
from unetpp.train.state import refuse_to_overwrite, resume_run, save_state
from unetpp.train.tnbc import ATTRIBUTION as TNBC_ATTRIBUTION
from unetpp.train.tnbc import build_tnbc_data, concat_data, split_patients
from unetpp.train.validate import recalibrate_bn

LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_loss_fg", "train_loss_border", "heldout_loss", "heldout_fg_iou",
               "heldout_border_iou", "heldout_ap50", "heldout_map", "bn_recalibrated", "train_time_s", "eval_time_s",
               "epoch_time_s", "crops", "crops_per_s", "heldout_fg_iou_d1", "heldout_fg_iou_d2", "heldout_fg_iou_d3")
SELECT_ON = "heldout_map"
# The post-processing behind the held-out AP/mAP logged during training, fixed here (not SeedParams' defaults, which
# are tuned afterwards) so that the selection rule and a run's resumability do not move with that tuning.
SELECTION_SEEDS = SeedParams(t_fg=0.5, t_border=0.5, min_seed_area=4, min_area=8, flood="border",
                             keep_unseeded=True, fill_holes=True)
CACHE_NAME = "instances_cache.npz"
RECAL_EPOCH = 1_000_000  # the (never trained) epoch key of the fixed, un-augmented BatchNorm recalibration crops


def split_holdout(train_ids: Sequence[str], holdout: int) -> tuple[list[str], list[str]]:
    """(fit ids, held-out ids): the last `holdout` train ids are held out for model selection."""
    ids = list(train_ids)
    if len(ids) <= holdout:
        raise InputError(expected_found("train ids", f"more than the {holdout} held out", len(ids),
                                        "Lower --holdout or use more train ids."))
    return ids[:-holdout], ids[-holdout:]


def write_log(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LOG_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def _init_source(init: str) -> dict[str, Any]:
    if init == "none":
        return {"init": "none"}
    path = shipped_checkpoint() if init == "shipped" else Path(init)
    return {"init": str(init), "init_sha256": file_sha256(path)}


def checkpoint_meta(cfg: InstanceTrainConfig, border: BorderParams, seeds: SeedParams, row: dict[str, Any],
                    fit_ids: Sequence[str], held_ids: Sequence[str], command: str) -> dict[str, Any]:
    """What predict needs to reproduce the model's input scale and read its outputs, plus provenance."""
    return {
        "outputs": list(OUTPUTS), "activation": "sigmoid",
        "scale": {"rule": SCALE_RULE.format(area=cfg.target_area), "target_area": cfg.target_area,
                  "s_range": [S_MIN, S_MAX], "trained_jitter": list(cfg.jitter),
                  "note": "s = sqrt(target_area / median nucleus area in original pixels); training used the "
                          "ground-truth median, inference must estimate it"},
        "crop": cfg.crop, "border_params": border.to_dict(), "seed_params": seeds.to_dict(),
        "epoch": row["epoch"], **{k: row[k] for k in LOG_COLUMNS if k.startswith("heldout_") and k in row},
        "selected_on": SELECT_ON, "train_config": cfg.to_dict(), "n_fit": len(fit_ids), "n_heldout": len(held_ids),
        "heldout_ids": list(held_ids), "command": command,
    }


@dataclass(frozen=True)
class TrainSpeed:
    """How a run uses the CPU; none of it is part of the run's identity (results are the same bits for the same
    settings; a change here may change the last bits, not the recipe)."""

    channels_last: bool = False
    prefetch: int = 0  # batches cut and augmented ahead in a background thread (0: in the training thread)
    compile: bool = False  # torch.compile the training forward (costs a minute or so per start)
    workers: int = 0  # crop worker processes (spawned, persistent); for a machine with many cores beside a GPU
    bf16: bool = False  # CUDA only: forward and loss under bf16 autocast (weights, optimiser and EMA stay fp32)


def _train_epoch(model: torch.nn.Module, loader: DataLoader, criterion: ChannelBCEDice,
                 optimizer: torch.optim.Optimizer, dev: torch.device, desc: str, progress: bool,
                 forward: Any = None, ema: WeightEMA | None = None, speed: TrainSpeed | None = None) -> list[float]:
    """One pass; returns [mean loss, mean foreground part, mean border part] weighted by batch size."""
    model.train()
    forward, speed = (model if forward is None else forward), speed or TrainSpeed()
    sums = torch.zeros(3, dtype=torch.float64)
    seen = 0
    batches = prefetch(loader, speed.prefetch)
    for x, y in tqdm(batches, desc=desc, unit="batch", total=len(loader), disable=not progress, leave=False):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if speed.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=speed.bf16 and dev.type == "cuda"):
            fg, border = criterion.parts(forward(x), y)
        loss = fg + criterion.border_weight * border
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update(model)
        n = x.shape[0]
        sums += torch.tensor([loss.item(), fg.item(), border.item()], dtype=torch.float64) * n
        seen += n
    return (sums / max(seen, 1)).tolist()


def _quiet_worker(_: int) -> None:
    """Each crop worker computes on one thread: many workers, not many threads per worker."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def crop_loader(dataset: InstanceCropDataset, sampler: EpochBatchSampler, workers: int, pin: bool) -> DataLoader:
    """Batches in the training process (workers 0) or from `workers` spawned, persistent processes. Spawned, not
    forked: a fork of a process that has run OpenCV/OpenMP code can hang (see unetpp.train.prefetch). The keys,
    and so the crops, are the same either way."""
    if workers <= 0:
        return DataLoader(dataset, batch_sampler=sampler, num_workers=0, pin_memory=pin)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin,
                      multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4,
                      worker_init_fn=_quiet_worker)


def make_scheduler(cfg: InstanceTrainConfig, optimizer: torch.optim.Optimizer) -> Any:
    """Cosine to min_lr over the epochs; with warm-up epochs, a linear rise from lr/10 first."""
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs - cfg.warmup_epochs,
                                                        eta_min=cfg.min_lr)
    if not cfg.warmup_epochs:
        return cosine
    warm = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, end_factor=1.0,
                                             total_iters=cfg.warmup_epochs)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, cosine], milestones=[cfg.warmup_epochs])


def appearance_params(cfg: InstanceTrainConfig,
                      modality: ModalityParams | None) -> ModalityParams | AppearanceV2 | None:
    if not cfg.augment:
        return None
    if cfg.augment_preset == "v3":
        return AppearanceV3()
    if cfg.augment_preset == "v2":
        return AppearanceV2()
    return modality or ModalityParams()


def fit_and_selection(cfg: InstanceTrainConfig, train_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(fit ids, held-out ids): a selection ids file when the recipe names one, else the last `holdout` ids."""
    if cfg.selection:
        return resolve_selection(cfg.selection, train_ids)
    return split_holdout(train_ids, cfg.holdout)


def with_extra_data(cfg: InstanceTrainConfig, fit: InstanceData, extra_root: Path | None,
                    border: BorderParams) -> tuple[InstanceData, np.ndarray, list[str]]:
    """(training samples, crops per sample per epoch, extra ids): the DSB2018 fit images, then with
    `cfg.extra_data` the TNBC training patients' tiles, each giving ceil(extra_weight x) the crops the DSB2018
    rule gives it."""
    crops = crops_per_image(fit, cfg.crop_area, cfg.max_crops, cfg.crop_nuclei)
    if cfg.extra_data is None:
        return fit, crops, []
    if extra_root is None:
        raise InputError(expected_found("extra training data", f"the folder of {cfg.extra_data}", "no folder"))
    extra = build_tnbc_data(extra_root, split_patients("train"), cfg.target_area, border)
    more = crops_per_image(extra, cfg.crop_area, cfg.max_crops, cfg.crop_nuclei)
    more = np.maximum(np.ceil(cfg.extra_weight * more), 1).astype(np.int64)
    return concat_data(fit, extra), np.concatenate([crops, more]), list(extra.ids)


def _identity_and_meta(cfg: InstanceTrainConfig, fit_ids: list[str], held_ids: list[str], seeds: SeedParams,
                       appearance: Any, extra_ids: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's identity (what --resume must find unchanged) and what every checkpoint's meta carries beside the
    epoch's figures (where it started from; with TNBC, its tiles and the credit CC BY 4.0 asks for)."""
    identity = {"train_config": cfg.identity(), "train_ids": fit_ids, "val_ids": held_ids,
                "seed_params": seeds.to_dict(), "modality": appearance.to_dict() if appearance else None}
    meta_base: dict[str, Any] = {"init_source": _init_source(cfg.init)}
    if extra_ids:
        identity["extra_ids"] = extra_ids
        meta_base.update(extra_ids=extra_ids, data_credit=TNBC_ATTRIBUTION)
    return identity, meta_base


def _recalibration_crops(fit: Any, cfg: InstanceTrainConfig, pre: PreprocessConfig, n: int) -> torch.Tensor | None:
    """N fixed un-augmented fit crops to re-estimate BatchNorm statistics over (None for 0: off)."""
    if n < 0:
        raise InputError(expected_found("BatchNorm recalibration crops", "0 (off) or more", n))
    if not n:
        return None
    plain = InstanceCropDataset(fit, cfg.seed, cfg.crop, cfg.jitter, None, pre)
    return torch.stack([plain[(RECAL_EPOCH, i % len(plain))][0] for i in range(n)])


def _epoch_line(row: dict[str, Any], epochs: int, is_best: bool) -> str:
    """The line printed after each epoch: losses, held-out scores, time."""
    return (f"epoch {row['epoch']}/{epochs}  lr {row['lr']:.3g}  loss {row['train_loss']:.4f} (fg "
            f"{row['train_loss_fg']:.4f}, border {row['train_loss_border']:.4f})  held-out fg IoU "
            f"{row['heldout_fg_iou']:.4f} border IoU {row['heldout_border_iou']:.4f} AP50 {row['heldout_ap50']:.4f} "
            f"mAP {row['heldout_map']:.4f}  {row['epoch_time_s']:.1f}s{'  *best' if is_best else ''}")


def train_instance(
    cfg: InstanceTrainConfig, stage1_train: Path, out: Path, train_ids: Sequence[str], device: str = "cpu",
    resume: bool = False, time_limit_s: float | None = None, progress: bool = True, command: str | None = None,
    seed_params: SeedParams | None = None, modality: ModalityParams | None = None, verbose: bool = True,
    bn_recalibrate: int = 0, speed: TrainSpeed | None = None, keep_epochs: bool = False,
    cache: Path | None = None, extra_root: Path | None = None,
) -> dict[str, Any]:
    """Train; writes out/log.csv, out/best.pt (best held-out mAP), out/latest.pt (each epoch) and out/last.pt.

    Randomness derives from (seed, epoch, index) as in unetpp.train.loop, so a resumed run ends in the state of
    an uninterrupted one (bitwise on the CPU). `bn_recalibrate` = N > 0 re-estimates the BatchNorm statistics over
    N fixed un-augmented fit crops before each evaluation (saved checkpoints carry them). Train-mode BatchNorm never
    reads its running statistics, so this changes the evaluation and the selection, not the weights' trajectory:
    it is not part of the run's identity and may differ on --resume. With `cfg.ema` the weight average is what is
    evaluated, selected and saved (best.pt, latest.pt, and out/epochs/epoch_NNN.pt with `keep_epochs`).
    `cache` is where the rescaled data are kept (default out/instances_cache.npz); runs of the same ids, target
    area and border parameters can share one (it is checked against them when read). `extra_root` is the folder of
    `cfg.extra_data` (TNBC), whose training patients' tiles are trained on beside the fit ids.
    """
    t_start = time.monotonic()
    command = command if command is not None else " ".join(sys.argv)
    dev = resolve_device(device)
    speed = speed or TrainSpeed()
    if dev.type == "cuda":
        set_cuda_determinism(False)  # fixed crop size: let cuDNN pick its fastest kernels once
    border, seeds = BorderParams.from_dict(cfg.border), seed_params or SELECTION_SEEDS
    appearance = appearance_params(cfg, modality)
    out = ensure_dir(out)
    last_path, best_path, latest_path, log_path = out / "last.pt", out / "best.pt", out / "latest.pt", out / "log.csv"
    refuse_to_overwrite(out, last_path, resume)
    fit_ids, held_ids = fit_and_selection(cfg, train_ids)
    pre = PreprocessConfig(size=cfg.crop)
    data = build_instance_data(stage1_train, fit_ids + held_ids, cfg.target_area, border,
                               cache=cache or out / CACHE_NAME, progress=progress, replace_stale=cache is None)
    fit, crops, extra_ids = with_extra_data(cfg, data.subset(range(len(fit_ids))), extra_root, border)
    views = heldout_views(data.subset(range(len(fit_ids), len(data))), cfg.view_size, pre)

    model = init_instance_model(cfg.init, cfg.seed, cfg.deep_supervision).to(dev)
    model = model.to(memory_format=torch.channels_last) if speed.channels_last else model
    criterion = ChannelBCEDice(cfg.border_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(cfg, optimizer)
    ema = WeightEMA(model, cfg.ema) if cfg.ema else None
    identity, meta_base = _identity_and_meta(cfg, fit_ids, held_ids, seeds, appearance, extra_ids)
    log: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, SELECT_ON: -1.0}
    start_epoch = 0
    if resume:
        start_epoch, log, best = resume_run(last_path, identity, model, optimizer, scheduler, ema)
    forward = torch.compile(model) if speed.compile else model

    dataset = InstanceCropDataset(fit, cfg.seed, cfg.crop, cfg.jitter, appearance, pre, crops=crops)
    recal_x = _recalibration_crops(fit, cfg, pre, bn_recalibrate)
    sampler = EpochBatchSampler(len(dataset), cfg.batch_size, cfg.seed, drop_last=True,
                                max_batches=cfg.steps_per_epoch)
    loader = crop_loader(dataset, sampler, speed.workers, pin=dev.type == "cuda")
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        loss, loss_fg, loss_b = _train_epoch(model, loader, criterion, optimizer, dev,
                                             f"epoch {epoch + 1}/{cfg.epochs}", progress, forward, ema, speed)
        scheduler.step()
        t1 = time.monotonic()
        scored = ema.averaged(model) if ema is not None else model
        if recal_x is not None:
            recalibrate_bn(scored, recal_x, cfg.batch_size, dev)
        metrics = evaluate_heldout(scored, criterion, views, cfg.batch_size, dev, seeds)
        t2 = time.monotonic()
        n_crops = len(sampler) * cfg.batch_size
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss, "train_loss_fg": loss_fg, "train_loss_border": loss_b,
               **metrics, "bn_recalibrated": bn_recalibrate, "train_time_s": round(t1 - t0, 3),
               "eval_time_s": round(t2 - t1, 3), "crops": n_crops, "crops_per_s": round(n_crops / (t1 - t0), 3)}
        meta = {**checkpoint_meta(cfg, border, seeds, {**row, "epoch_time_s": 0}, fit_ids, held_ids, command),
                **meta_base}
        save_checkpoint(latest_path, scored, pre, meta=meta)
        if keep_epochs:
            save_checkpoint(ensure_dir(out / "epochs") / f"epoch_{epoch + 1:03d}.pt", scored, pre, meta=meta)
        is_best = row[SELECT_ON] > best[SELECT_ON]
        if is_best:
            best = {"epoch": epoch + 1, **{k: v for k, v in row.items() if k.startswith("heldout_")}}
            save_checkpoint(best_path, scored, pre, meta=meta)
        row["epoch_time_s"] = round(time.monotonic() - t0, 3)
        log.append(row)
        write_log(log_path, log)
        extra = {"ema": ema.state_dict()} if ema is not None else {}
        save_state(last_path, epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(),
                   scheduler=scheduler.state_dict(), best=best, log=log, command=command, **identity, **extra)
        if verbose:
            print(_epoch_line(row, cfg.epochs, is_best), flush=True)
        if time_limit_s is not None and time.monotonic() - t_start >= time_limit_s and epoch + 1 < cfg.epochs:
            stopped_early = True
            break
    return {"out": str(out), "epochs_completed": log[-1]["epoch"] if log else 0, "epochs": cfg.epochs,
            "stopped_early": stopped_early, "best_epoch": best["epoch"],
            "best_heldout_map": best[SELECT_ON] if best["epoch"] else None, "last": log[-1] if log else None,
            "n_fit": len(fit_ids), "n_heldout": len(held_ids), "crops_per_epoch": len(dataset),
            "wall_s": round(time.monotonic() - t_start, 3)}
