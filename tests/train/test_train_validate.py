"""Validation metrics against the eval package's reference definitions; BatchNorm re-estimation by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unetpp.eval import metrics
from unetpp.train.validate import guide_ious, recalibrate_bn, upstream_iou


def _case(n: int = 20, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.3, 1.0, (n, 1, size, size)).astype(np.float32)
    logits[0] = -5.0  # an empty prediction ...
    masks = (rng.random((n, size, size)) > 0.6).astype(np.uint8) * 255
    masks[0] = 0  # ... on an empty mask scores 1
    masks[1, :4] = 128  # soft edges: 128/255 > 0.5
    masks[1, 4:] = 127
    return torch.from_numpy(logits), torch.from_numpy(masks[:, None] / np.float32(255.0)), masks


def test_guide_iou_matches_reference_per_image():
    logits, target, masks = _case()
    got = guide_ious(logits, target).numpy()
    want = [metrics.guide_iou(logits[i, 0].numpy(), masks[i]) for i in range(len(masks))]
    assert got == pytest.approx(want, rel=1e-12)
    assert got[0] == 1.0


def test_upstream_iou_pools_batches_of_16():
    logits, target, masks = _case(n=20)
    want = metrics.upstream_iou([x[0].numpy() for x in logits], list(masks), batch_size=16)
    assert upstream_iou(logits, target, 16) == pytest.approx(want, rel=1e-12)
    # pooled per batch is not the per-image mean
    per_image = np.mean([metrics.upstream_iou([logits[i, 0].numpy()], [masks[i]], 1) for i in range(20)])
    assert abs(upstream_iou(logits, target, 16) - per_image) > 1e-3


def test_recalibrate_bn_is_the_cumulative_average_over_the_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1),
                          nn.BatchNorm2d(2))
    x = torch.randn(12, 3, 8, 8) * 3 + 1
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.eval()
    assert recalibrate_bn(model, x, batch_size=4, device=torch.device("cpu")) == 2
    assert not model.training and model[1].momentum == 0.1
    with torch.no_grad():
        h = model[0](x)
        batches = h.split(4)
    # equal batch sizes: running mean = mean of batch means = data mean; var = mean of unbiased batch variances
    assert torch.allclose(model[1].running_mean, h.mean((0, 2, 3)), atol=1e-5)
    want_var = torch.stack([b.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(model[1].running_var, want_var, rtol=1e-4)
    assert int(model[1].num_batches_tracked) == 3
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v)
