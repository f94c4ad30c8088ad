"""Upstream's training losses on raw logits: BCEDiceLoss and LovaszHingeLoss (per image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetpp.errors import UnetppError, expected_found

DICE_SMOOTH = 1e-5


def soft_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """Per-sample soft Dice on sigmoid probabilities: (2*inter + s) / (sum_p + sum_t + s), shape (N,)."""
    n = logits.shape[0]
    prob = torch.sigmoid(logits).reshape(n, -1)
    tgt = target.reshape(n, -1)
    inter = (prob * tgt).sum(1)
    return (2.0 * inter + smooth) / (prob.sum(1) + tgt.sum(1) + smooth)


class BCEDiceLoss(nn.Module):
    """0.5 * BCEWithLogits (mean over all pixels) + (1 - Dice averaged over the batch), as upstream's losses.py."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, target = logits.float(), target.float()
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return 0.5 * bce + (1.0 - soft_dice(logits, target).mean())


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors, row-wise over (N, P).

    jaccard_k = 1 - (G - cumsum(gt)_k) / (G + cumsum(1 - gt)_k); grad = first difference of jaccard along k.
    """
    gts = gt_sorted.sum(1, keepdim=True)
    inter = gts - gt_sorted.cumsum(1)
    union = gts + (1.0 - gt_sorted).cumsum(1)
    jac = 1.0 - inter / union
    return torch.cat([jac[:, :1], jac[:, 1:] - jac[:, :-1]], 1)


def lovasz_hinge_per_image(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over images of the Lovasz hinge of each image's flattened logits (labels in [0, 1])."""
    n = logits.shape[0]
    lg = logits.reshape(n, -1).float()
    lb = labels.reshape(n, -1).float()
    errors = 1.0 - lg * (2.0 * lb - 1.0)
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True)
    grad = lovasz_grad(torch.gather(lb, 1, perm))
    return (F.relu(errors_sorted) * grad).sum(1).mean()


class LovaszHingeLoss(nn.Module):
    """Upstream's LovaszHingeLoss: lovasz_hinge(logits.squeeze(1), target.squeeze(1), per_image=True).

    Targets are passed as upstream's dataset gives them (mask/255, soft at the resized edges).
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return lovasz_hinge_per_image(logits, target)


LOSSES: dict[str, type[nn.Module]] = {"BCEDiceLoss": BCEDiceLoss, "LovaszHingeLoss": LovaszHingeLoss}


def get_loss(name: str) -> nn.Module:
    """The loss module registered under `name`."""
    if name not in LOSSES:
        raise UnetppError(expected_found("loss", " or ".join(LOSSES), repr(name)))
    return LOSSES[name]()


def supervised_loss(
    criterion: nn.Module, output: torch.Tensor | list[torch.Tensor], target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, scored logits): with deep supervision the loss is averaged over the heads and the last is scored."""
    if isinstance(output, (list, tuple)):
        loss = sum(criterion(o, target) for o in output) / len(output)
        return loss, output[-1]
    return criterion(output, target), output
