"""The instance-aware NestedUNet (2 outputs: foreground, border), its initialisation and its loss."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unetpp.config import ModelConfig
from unetpp.errors import CheckpointError, UnetppError, expected_found
from unetpp.model.checkpoint import load_checkpoint
from unetpp.model.network import NestedUNet, build_model
from unetpp.train.instance_targets import OUTPUTS

DICE_SMOOTH = 1.0


@dataclass(frozen=True)
class InstanceTrainConfig:
    """The instance recipe: crops at a nucleus-normalised scale, BCE+Dice per channel, Adam with a cosine rate."""

    epochs: int = 40
    batch_size: int = 16
    lr: float = 3e-4
    min_lr: float = 1e-6
    weight_decay: float = 1e-4
    seed: int = 41
    crop: int = 96
    target_area: float = 150.0
    jitter: tuple[float, float] = (0.8, 1.25)
    border_weight: float = 2.0
    augment: bool = True
    holdout: int = 64
    view_size: int = 160
    init: str = "shipped"
    border: dict[str, Any] = field(default_factory=dict)
    crop_area: float | None = None  # None: one crop per image per epoch; else one per crop_area scaled pixels
    crop_nuclei: float | None = None  # with crop_area: one more crop per crop_nuclei nuclei (crowded images)
    max_crops: int = 16
    deep_supervision: bool = False  # heads on X0,1..X0,4, losses averaged (UNet++'s training mode)
    augment_preset: str = "v1"  # v1 (modality_augment), v2 (appearance_v2), v3 (he_augment: v2 + pale nuclei)
    selection: str | None = None  # None: the last `holdout` train ids; else an ids file (or "shipped") held out
    warmup_epochs: int = 0  # linear rise of the rate over these epochs before the cosine
    ema: float = 0.0  # weight EMA decay per step (0: off); the EMA weights are evaluated and saved
    extra_data: str | None = None  # "tnbc": its training patients' tiles beside the DSB2018 fit ids
    steps_per_epoch: int | None = None  # None: one pass over the crops; else this many batches of a fresh subset
    extra_weight: float = 1.0  # crops per extra tile = ceil(weight x the DSB2018 rule's count for that tile)

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "at least 1", self.epochs),
            ("batch_size", self.batch_size >= 1, "at least 1", self.batch_size),
            ("lr", self.lr > 0, "a positive number", self.lr),
            ("min_lr", 0 <= self.min_lr <= self.lr, f"between 0 and lr ({self.lr})", self.min_lr),
            ("crop", self.crop >= 16 and self.crop % 16 == 0, "a multiple of 16", self.crop),
            ("target_area", self.target_area > 0, "a positive area in pixels", self.target_area),
            ("jitter", 0 < self.jitter[0] <= self.jitter[1], "0 < low <= high", self.jitter),
            ("border_weight", self.border_weight >= 0, "a weight >= 0", self.border_weight),
            ("holdout", self.holdout >= 1, "at least 1 held-out train id", self.holdout),
            ("crop_area", self.crop_area is None or self.crop_area > 0, "None or a positive area", self.crop_area),
            ("crop_nuclei", self.crop_nuclei is None or self.crop_nuclei > 0, "None or a positive count",
             self.crop_nuclei),
            ("max_crops", self.max_crops >= 1, "at least 1", self.max_crops),
            ("augment_preset", self.augment_preset in ("v1", "v2", "v3"), "v1, v2 or v3", self.augment_preset),
            ("warmup_epochs", 0 <= self.warmup_epochs < self.epochs, f"0 .. {self.epochs - 1}", self.warmup_epochs),
            ("ema", 0.0 <= self.ema < 1.0, "a decay in [0, 1)", self.ema),
            ("extra_data", self.extra_data in (None, "tnbc"), "None or tnbc", self.extra_data),
            ("extra_weight", self.extra_weight > 0, "a positive weight", self.extra_weight),
            ("steps_per_epoch", self.steps_per_epoch is None or self.steps_per_epoch >= 1, "None or at least 1",
             self.steps_per_epoch),
        ]
        for what, ok, expected, found in checks:
            if not ok:
                raise UnetppError(expected_found(f"instance training {what}", expected, found))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["jitter"] = list(self.jitter)
        return d

    def identity(self) -> dict[str, Any]:
        """to_dict() without the fields a run made before they existed left at their defaults, so such a run's
        state still resumes."""
        d, base = self.to_dict(), asdict(InstanceTrainConfig())
        for k in _ADDED_FIELDS:
            if d[k] == base[k]:
                d.pop(k)
        return d


_ADDED_FIELDS = ("crop_nuclei", "max_crops", "deep_supervision", "augment_preset", "selection", "warmup_epochs",
                 "ema", "extra_data", "extra_weight",
                 "steps_per_epoch")


def instance_model_config(deep_supervision: bool = False) -> ModelConfig:
    """NestedUNet as the guide (nearest upsampling) with one output per target channel; with deep supervision a
    head on each of X0,1..X0,4."""
    return ModelConfig(num_classes=len(OUTPUTS), deep_supervision=deep_supervision)


HEADS = tuple(f"final{k}" for k in range(1, 5))


def init_instance_model(init: str, seed: int, deep_supervision: bool = False) -> NestedUNet:
    """A 2-output model: every weight from the checkpoint `init` ("shipped", a path, or "none" for a random start).
    From a 1-output (guide) checkpoint `final` channel 0 is the checkpoint's and channel 1 is freshly initialised
    from `seed`; a 2-output (instance) checkpoint is taken whole, to continue training with another recipe. With
    deep supervision and a checkpoint without it, each head X0,k starts as a copy of the checkpoint's `final`;
    without deep supervision and a checkpoint with it, the full-depth head X0,4 becomes `final` (the others are
    dropped)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(instance_model_config(deep_supervision))
    if init == "none":
        return model
    src = load_checkpoint(None if init == "shipped" else Path(init))
    if src.config.num_classes not in (1, len(OUTPUTS)):
        raise CheckpointError(expected_found(f"initial checkpoint {src.path}", f"a 1- or {len(OUTPUTS)}-output "
                                             "NestedUNet", str(src.config)))
    state = {k: v.clone() for k, v in src.model.state_dict().items()}
    if src.config.deep_supervision and not deep_supervision:
        state["final.weight"], state["final.bias"] = state[f"{HEADS[-1]}.weight"], state[f"{HEADS[-1]}.bias"]
        for head in HEADS:
            state.pop(f"{head}.weight"), state.pop(f"{head}.bias")
    own = model.state_dict()
    if src.config.num_classes == 1:
        head = "final" if "final.weight" in own else HEADS[-1]
        state["final.weight"] = torch.cat([state["final.weight"], own[f"{head}.weight"][1:]], 0)
        state["final.bias"] = torch.cat([state["final.bias"], own[f"{head}.bias"][1:]], 0)
    if deep_supervision and not src.config.deep_supervision:
        final_w, final_b = state.pop("final.weight"), state.pop("final.bias")
        for head in HEADS:
            state[f"{head}.weight"], state[f"{head}.bias"] = final_w.clone(), final_b.clone()
    model.load_state_dict(state, strict=True)
    return model


def full_depth(out: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """The scored output: the last head of a deeply supervised model's list, else the one output."""
    return out[-1] if isinstance(out, list | tuple) else out


def batch_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """Soft Dice of one channel pooled over the batch (crops without nuclei do not dominate)."""
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    return (2.0 * inter + smooth) / (prob.sum() + target.sum() + smooth)


class ChannelBCEDice(nn.Module):
    """Per channel 0.5 * BCE + (1 - batch Dice); total = foreground + border_weight * border."""

    def __init__(self, border_weight: float = 2.0) -> None:
        super().__init__()
        self.border_weight = float(border_weight)

    def parts(self, logits: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
        """[foreground, border] losses; for a deeply supervised model's list of heads, each averaged over them."""
        if isinstance(logits, list | tuple):
            per_head = [self.parts(h, target) for h in logits]
            return [torch.stack([p[c] for p in per_head]).mean() for c in range(len(per_head[0]))]
        logits, target = logits.float(), target.float()
        return [0.5 * F.binary_cross_entropy_with_logits(logits[:, c], target[:, c])
                + (1.0 - batch_dice(logits[:, c], target[:, c])) for c in range(logits.shape[1])]

    def forward(self, logits: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        fg, border = self.parts(logits, target)
        return fg + self.border_weight * border
