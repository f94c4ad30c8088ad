"""Held-out scores of the instance model on fixed views: loss, foreground/border IoU, DSB AP@0.5 and mAP."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unetpp.eval.instance_metrics import instance_score
from unetpp.predict.seeds import SeedParams, labels_from_body_border
from unetpp.train.instance_data import HeldOutViews
from unetpp.train.instance_model import full_depth


def _pooled_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    inter, union = int((pred & gt).sum()), int((pred | gt).sum())
    return 1.0 if union == 0 else inter / union


def score_probs(probs: np.ndarray, views: HeldOutViews, params: SeedParams | None = None) -> dict[str, float]:
    """Scores of probabilities (N, 2, S, S) against the views: mean per-view foreground IoU (threshold t_fg),
    pooled border IoU (t_border), and the DSB2018 AP@0.5 / mAP of labels_from_body_border."""
    params = params or SeedParams()
    fg_ious, scores = [], []
    b_inter = b_union = 0
    for k, (lab, (h, w)) in enumerate(zip(views.labels, views.valid)):
        fg_p, b_p = probs[k, 0, :h, :w], probs[k, 1, :h, :w]
        gt_fg, gt_b = views.y[k, 0, :h, :w].numpy() > 0.5, views.y[k, 1, :h, :w].numpy() > 0.5
        pred_fg, pred_b = fg_p > params.t_fg, b_p > params.t_border
        fg_ious.append(_pooled_iou(pred_fg, gt_fg))
        b_inter += int((pred_b & gt_b).sum())
        b_union += int((pred_b | gt_b).sum())
        scores.append(instance_score(labels_from_body_border(fg_p, b_p, params), lab))
    return {
        "fg_iou": float(np.mean(fg_ious)),
        "border_iou": b_inter / b_union if b_union else 1.0,
        "ap50": float(np.mean([s.at(0.5) for s in scores])),
        "map": float(np.mean([s.ap for s in scores])),
    }


def evaluate_heldout(model: nn.Module, criterion: nn.Module, views: HeldOutViews, batch_size: int,
                     device: torch.device, params: SeedParams | None = None) -> dict[str, float]:
    """One eval-mode pass: held-out loss and scores (see score_probs), keys prefixed `heldout_`."""
    model.eval()
    total = 0.0
    outs: list[torch.Tensor] = []
    shallow: dict[int, list[torch.Tensor]] = {}
    n = views.x.shape[0]
    with torch.no_grad():
        for s in range(0, n, batch_size):
            xb, yb = views.x[s:s + batch_size].to(device), views.y[s:s + batch_size].to(device)
            out = model(xb)
            logits = full_depth(out).float()
            total += float(criterion(logits, yb)) * xb.shape[0]
            outs.append(torch.sigmoid(logits).cpu())
            if isinstance(out, list | tuple):  # deep supervision: the shallower heads' foreground, for pruning
                for d, head in enumerate(out[:-1], start=1):
                    shallow.setdefault(d, []).append(torch.sigmoid(head[:, :1].float()).cpu())
    scores = score_probs(torch.cat(outs).numpy(), views, params)
    t_fg = (params or SeedParams()).t_fg
    for d, probs in shallow.items():
        fg = torch.cat(probs).numpy()[:, 0]
        scores[f"fg_iou_d{d}"] = float(np.mean([
            _pooled_iou(fg[k, :h, :w] > t_fg, views.y[k, 0, :h, :w].numpy() > 0.5)
            for k, (h, w) in enumerate(views.valid)]))
    return {"heldout_loss": total / n, **{f"heldout_{k}": v for k, v in scores.items()}}
