"""Upstream's training recipe: seeded, resumable (bit-exact on the same machine), fast on one GPU."""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from unetpp.atomic import ensure_dir, write_text_atomic
from unetpp.config import ModelConfig, PreprocessConfig, TrainConfig
from unetpp.model.checkpoint import save_checkpoint
from unetpp.model.network import build_model
from unetpp.train.dataset import AugmentedDataset, EpochBatchSampler, load_split, stack_split
from unetpp.train.device import resolve_device, set_cuda_determinism
from unetpp.train.losses import get_loss, supervised_loss
from unetpp.train.state import refuse_to_overwrite, resume_run, save_state
from unetpp.train.validate import evaluate, recalibrate_bn

LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_iou_upstream", "val_loss", "val_iou_guide", "val_iou_upstream",
               "bn_recalibrated", "epoch_time_s")


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Upstream: SGD(lr, momentum, nesterov, weight_decay) or Adam(lr, weight_decay), over trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "Adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def write_log_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite log.csv atomically with every row so far."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LOG_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in LOG_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def train_one_epoch(
    model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer, dev: torch.device,
    use_amp: bool, desc: str = "train", progress: bool = True,
) -> tuple[float, float]:
    """One pass over `loader`; returns (mean loss, upstream IoU: sigmoid > 0.5 pooled per batch, weighted)."""
    model.train()
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64)  # accumulated on the device: no per-step sync
    iou_sum = torch.zeros((), device=dev, dtype=torch.float64)
    seen = 0
    for x, y in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            output = model(x)
        loss, logits = supervised_loss(criterion, output, y)  # the losses compute in fp32
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            n = x.shape[0]
            pred, gt = torch.sigmoid(logits.float()) > 0.5, y > 0.5
            batch_iou = ((pred & gt).sum() + 1e-5) / ((pred | gt).sum() + 1e-5)
            loss_sum += loss.detach().double() * n
            iou_sum += batch_iou.double() * n
            seen += n
    return loss_sum.item() / seen, iou_sum.item() / seen


def _run_identity(cfg: TrainConfig, model_config: ModelConfig, train_ids: Sequence[str],
                  val_ids: Sequence[str]) -> dict[str, Any]:
    """What must not change between a run and its resumption."""
    return {"train_config": cfg.to_dict(), "model_config": model_config.to_dict(),
            "train_ids": list(train_ids), "val_ids": list(val_ids)}


def _summary(out: Path, cfg: TrainConfig, log: list[dict[str, Any]], best: dict[str, Any], stopped_early: bool,
             device: str, amp: bool, t_start: float) -> dict[str, Any]:
    """What train() returns: the epochs done, the best epoch and its scores, the last row, the device, the time."""
    return {
        "out": str(out),
        "epochs_completed": log[-1]["epoch"] if log else 0,
        "epochs": cfg.epochs,
        "stopped_early": stopped_early,
        "best_epoch": best["epoch"],
        "best_val_iou_guide": best["val_iou_guide"] if best["epoch"] else None,
        "best_val_iou_upstream": best["val_iou_upstream"],
        "last": log[-1] if log else None,
        "device": device,
        "amp": amp,
        "wall_s": round(time.monotonic() - t_start, 3),
    }


def train(
    cfg: TrainConfig,
    data: Path,
    out: Path,
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    device: str = "cpu",
    model_config: ModelConfig | None = None,
    resume: bool = False,
    amp: bool = True,
    time_limit_s: float | None = None,
    progress: bool = True,
    num_workers: int = 0,
    command: str | None = None,
    deterministic: bool = False,
) -> dict[str, Any]:
    """Train NestedUNet on a prepared dsb2018_96 folder; writes out/log.csv, out/best.pt and out/last.pt.

    All randomness is derived from (cfg.seed, epoch): weight init from cfg.seed, the epoch's shuffle from
    (seed, epoch), each sample's augmentation from (seed, epoch, index). So `resume=True` continues from
    last.pt and ends in exactly the state of an uninterrupted run: bitwise on the CPU; on CUDA only with
    `deterministic=True` (cudnn.benchmark and non-deterministic kernels make two CUDA runs differ from the first
    step on). Returns a summary dict.
    """
    t_start = time.monotonic()
    model_config = model_config or ModelConfig()
    command = command if command is not None else " ".join(sys.argv)
    dev = resolve_device(device)
    use_amp = bool(amp) and dev.type == "cuda"
    if dev.type == "cuda":
        set_cuda_determinism(deterministic)
    out = ensure_dir(out)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.csv"
    refuse_to_overwrite(out, last_path, resume)
    pre = PreprocessConfig()
    train_data, val_data = load_split(data, train_ids), load_split(data, val_ids)
    val_x, val_y = (t.to(dev) for t in stack_split(val_data, pre))
    recal_x = stack_split(train_data, pre)[0].to(dev) if cfg.bn_recalibrate else None

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(model_config)
    model.to(dev)
    criterion = get_loss(cfg.loss)
    optimizer = build_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)

    identity = _run_identity(cfg, model_config, train_ids, val_ids)
    log: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "val_iou_guide": -1.0, "val_iou_upstream": None}
    start_epoch = 0
    if resume:
        start_epoch, log, best = resume_run(last_path, identity, model, optimizer, scheduler)

    dataset = AugmentedDataset(train_data, cfg.seed, augment=cfg.augment, cfg=pre)
    sampler = EpochBatchSampler(len(dataset), cfg.batch_size, cfg.seed, drop_last=True)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=dev.type == "cuda",
                        persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(cfg.seed))

    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_iou = train_one_epoch(model, loader, criterion, optimizer, dev, use_amp,
                                                desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=progress)
        scheduler.step()
        if recal_x is not None:
            recalibrate_bn(model, recal_x, cfg.batch_size, dev)
        metrics = evaluate(model, criterion, val_x, val_y, cfg.batch_size, dev)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_iou_upstream": train_iou, **metrics,
               "bn_recalibrated": int(recal_x is not None), "epoch_time_s": round(time.monotonic() - t0, 3)}
        log.append(row)
        is_best = row["val_iou_guide"] > best["val_iou_guide"]
        if is_best:
            best = {"epoch": epoch + 1, "val_iou_guide": row["val_iou_guide"],
                    "val_iou_upstream": row["val_iou_upstream"], "val_loss": row["val_loss"]}
            save_checkpoint(best_path, model, pre, meta={
                **best, "train_config": cfg.to_dict(), "bn_recalibrated": bool(cfg.bn_recalibrate),
                "n_train": len(train_ids), "n_val": len(val_ids), "command": command})
        write_log_csv(log_path, log)
        save_state(last_path, epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(),
                   scheduler=scheduler.state_dict(), best=best, log=log, command=command, **identity)
        if progress:
            mark = "  *best" if is_best else ""
            print(f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {train_loss:.4f}  val_loss {row['val_loss']:.4f}"
                  f"  val_iou guide {row['val_iou_guide']:.4f} upstream {row['val_iou_upstream']:.4f}"
                  f"  {row['epoch_time_s']:.1f}s{mark}", flush=True)
        if time_limit_s is not None and time.monotonic() - t_start >= time_limit_s and epoch + 1 < cfg.epochs:
            stopped_early = True
            break
    return _summary(out, cfg, log, best, stopped_early, str(dev), use_amp, t_start)
