"""Frozen configuration: the only home of the model's and the pre-processing's constants."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

UP_MODES = ("nearest", "bilinear")
NB_FILTER = (32, 64, 128, 256, 512)
INPUT_NAME = "actual_input_1"
OUTPUT_NAME = "output1"
DEFAULT_OPSET = 11
# The lowest opset that exports NestedUNet (its nearest upsampling needs 9); the highest is the installed torch's.
MIN_OPSET = 9
TRAIN_LOSSES = ("BCEDiceLoss", "LovaszHingeLoss")
TRAIN_OPTIMIZERS = ("SGD", "Adam")


@dataclass(frozen=True)
class ModelConfig:
    """NestedUNet hyper-parameters; travels with every checkpoint of ours."""

    num_classes: int = 1
    input_channels: int = 3
    deep_supervision: bool = False
    up_mode: str = "nearest"

    def __post_init__(self) -> None:
        if self.up_mode not in UP_MODES:
            from unetpp.errors import UnetppError, expected_found

            raise UnetppError(expected_found("up_mode", " or ".join(UP_MODES), repr(self.up_mode)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


@dataclass(frozen=True)
class PreprocessConfig:
    """The guide's network input: BGR uint8 96x96, ImageNet Normalize in BGR order, then an extra /255."""

    size: int = 96
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    extra_divide: float = 255.0
    channel_order: str = "BGR"
    logit_threshold: float = 0.5  # the guide's decision: raw logit > 0.5 (no sigmoid; = probability 0.6225)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    @property
    def input_nbytes(self) -> int:
        return 4 * 3 * self.size * self.size

    @property
    def output_nbytes(self) -> int:
        return 4 * self.size * self.size

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        keys = {f for f in cls.__dataclass_fields__}
        d = dict(d)
        if "threshold" in d and "logit_threshold" not in d:  # checkpoints written before the rename
            d["logit_threshold"] = d.pop("threshold")
        kw = {k: v for k, v in d.items() if k in keys}
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


@dataclass(frozen=True)
class TrainConfig:
    """Upstream train.py's recipe as defaults (REFERENCE.md), nearest upsampling as the guide."""

    epochs: int = 100
    batch_size: int = 16
    loss: str = "BCEDiceLoss"
    optimizer: str = "SGD"
    lr: float = 1e-3
    min_lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 41
    augment: bool = True
    bn_recalibrate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    nesterov: bool = False

    def __post_init__(self) -> None:
        from unetpp.errors import UnetppError, expected_found

        checks = [
            ("loss", self.loss in TRAIN_LOSSES, " or ".join(TRAIN_LOSSES), repr(self.loss)),
            ("optimizer", self.optimizer in TRAIN_OPTIMIZERS, " or ".join(TRAIN_OPTIMIZERS), repr(self.optimizer)),
            ("epochs", self.epochs >= 1, "at least 1", self.epochs),
            ("batch_size", self.batch_size >= 1, "at least 1", self.batch_size),
            ("lr", self.lr > 0, "a positive number", self.lr),
            ("min_lr", 0 <= self.min_lr <= self.lr, f"between 0 and lr ({self.lr})", self.min_lr),
        ]
        for what, ok, expected, found in checks:
            if not ok:
                raise UnetppError(expected_found(f"training {what}", expected, found))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})
