"""Validation (loss and both IoU definitions) and BatchNorm statistics re-estimation."""

from __future__ import annotations

import torch
from torch import nn

from unetpp.train.losses import supervised_loss

UPSTREAM_IOU_BATCH = 16
IOU_SMOOTH = 1e-5


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def guide_ious(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The guide's per-image IoU: pred = logits > 0.5 (no sigmoid), gt = mask/255 > 0.5; shape (N,)."""
    n = logits.shape[0]
    pred = (logits > threshold).reshape(n, -1)
    gt = (target > 0.5).reshape(n, -1)
    inter = (pred & gt).sum(1).double()
    union = (pred | gt).sum(1).double()
    return (inter + IOU_SMOOTH) / (union + IOU_SMOOTH)


def upstream_iou(logits: torch.Tensor, target: torch.Tensor, batch_size: int = UPSTREAM_IOU_BATCH) -> float:
    """Upstream val.py: sigmoid > 0.5, IoU pooled over each batch (in order), mean weighted by batch size."""
    total = 0.0
    for sl in _chunks(logits.shape[0], batch_size):
        pred, gt = torch.sigmoid(logits[sl].float()) > 0.5, target[sl] > 0.5
        inter = (pred & gt).sum().item()
        union = (pred | gt).sum().item()
        total += (inter + IOU_SMOOTH) / (union + IOU_SMOOTH) * (sl.stop - sl.start)
    return total / logits.shape[0]


@torch.no_grad()
def evaluate(
    model: nn.Module, criterion: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Eval-mode fp32 pass over a whole split: mean loss and the two IoUs (named, never mixed)."""
    model.eval()
    losses, outs = [], []
    for sl in _chunks(x.shape[0], batch_size):
        xb, yb = x[sl].to(device, non_blocking=True), y[sl].to(device, non_blocking=True)
        loss, logits = supervised_loss(criterion, model(xb), yb)
        losses.append(loss.item() * (sl.stop - sl.start))
        outs.append(logits.float())
    logits = torch.cat(outs)
    target = y.to(device)
    return {
        "val_loss": sum(losses) / x.shape[0],
        "val_iou_guide": guide_ious(logits, target).mean().item(),
        "val_iou_upstream": upstream_iou(logits, target),
    }


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> int:
    """Re-estimate every BatchNorm's running mean/var over `x` with the weights frozen; returns the BN count.

    Running stats are reset and accumulated as a cumulative average (momentum=None) over train-mode forward
    passes without gradients; each layer's momentum is restored afterwards.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [m.momentum for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for sl in _chunks(x.shape[0], batch_size):
            model(x[sl].to(device, non_blocking=True))
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.train(was_training)
    return len(bns)
