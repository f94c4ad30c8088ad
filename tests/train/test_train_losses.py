"""BCEDiceLoss and LovaszHingeLoss against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from unetpp.errors import UnetppError
from unetpp.train.losses import BCEDiceLoss, LovaszHingeLoss, get_loss, supervised_loss


def test_bce_dice_hand_computed():
    ln3 = math.log(3.0)
    # image 1: sigmoid -> [0.5, 0.75], target [1, 0]; image 2: sigmoid -> [0.25, 0.5], target [0, 1]
    logits = torch.tensor([[[[0.0, ln3]]], [[[-ln3, 0.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]], dtype=torch.float64)
    bce = (-math.log(0.5) - math.log(0.25) - math.log(0.75) - math.log(0.5)) / 4
    dice1 = (2 * 0.5 + 1e-5) / (1.25 + 1.0 + 1e-5)
    dice2 = (2 * 0.5 + 1e-5) / (0.75 + 1.0 + 1e-5)
    expected = 0.5 * bce + 1.0 - (dice1 + dice2) / 2
    got = BCEDiceLoss()(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_bce_dice_empty_mask_and_perfect_prediction():
    # all-background target, very negative logits: BCE ~ 0, dice = (0 + s) / (~0 + 0 + s) ~ 1 -> loss ~ 0
    logits = torch.full((1, 1, 4, 4), -30.0)
    loss = BCEDiceLoss()(logits, torch.zeros(1, 1, 4, 4))
    assert loss.item() == pytest.approx(0.0, abs=1e-4)


def test_lovasz_hinge_hand_computed_per_image():
    # image 1: logits [2, -1, 0.5], labels [1, 0, 0] -> errors 1 - x*sign = [-1, 0, 1.5]
    # sorted desc: 1.5 (gt 0), 0 (gt 0), -1 (gt 1); G = 1
    # jaccard_k = 1 - (G - cumsum gt)/(G + cumsum(1-gt)) = [1 - 1/2, 1 - 1/3, 1 - 0/3] = [1/2, 2/3, 1]
    # grad = [1/2, 1/6, 1/3]; loss = 1.5 * 1/2 + 0 * 1/6 + relu(-1) * 1/3 = 0.75
    # image 2: logits 0, labels [1, 1, 0] -> all errors 1; grads sum to jaccard_last = 1 -> loss 1
    logits = torch.tensor([[[[2.0, -1.0, 0.5]]], [[[0.0, 0.0, 0.0]]]], requires_grad=True)
    labels = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[1.0, 1.0, 0.0]]]])
    loss = LovaszHingeLoss()(logits, labels)
    assert loss.item() == pytest.approx((0.75 + 1.0) / 2, abs=1e-6)
    loss.backward()
    # d loss / d logit for image 1: only the positive errors count; d err/d x = -sign
    # x=0.5 (gt 0, sign -1, err 1.5, grad 1/2): +1/2 * 1/2 (mean over 2 images) = 0.25; x=2 (err -1): 0
    assert logits.grad[0, 0, 0, 2].item() == pytest.approx(0.25, abs=1e-6)
    assert logits.grad[0, 0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_lovasz_zero_when_all_margins_met():
    logits = torch.tensor([[[[3.0, -3.0], [2.0, -2.0]]]])
    labels = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    assert LovaszHingeLoss()(logits, labels).item() == pytest.approx(0.0, abs=1e-7)


def test_deep_supervision_averages_heads_and_scores_last():
    crit = BCEDiceLoss()
    target = torch.tensor([[[[1.0, 0.0]]]])
    heads = [torch.tensor([[[[v, -v]]]]) for v in (0.0, 1.0, 2.0, 3.0)]
    loss, scored = supervised_loss(crit, heads, target)
    assert loss.item() == pytest.approx(sum(crit(h, target).item() for h in heads) / 4, rel=1e-6)
    assert scored is heads[-1]


def test_unknown_loss_names_the_choices():
    with pytest.raises(UnetppError, match="BCEDiceLoss or LovaszHingeLoss"):
        get_loss("DiceLoss")
