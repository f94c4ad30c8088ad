"""NestedUNet (UNet++) with upstream's module names, so upstream state dicts load unchanged."""

from __future__ import annotations

import torch
from torch import nn

from unetpp.config import NB_FILTER, ModelConfig


class VGGBlock(nn.Module):
    """Conv3x3 -> BN -> ReLU -> Conv3x3 -> BN -> ReLU."""

    def __init__(self, in_channels: int, middle_channels: int, out_channels: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, middle_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(middle_channels)
        self.conv2 = nn.Conv2d(middle_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class NestedUNet(nn.Module):
    """UNet++: node x(i, j) is conv{i}_{j}; outputs raw logits (no sigmoid)."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        f = NB_FILTER
        self.pool = nn.MaxPool2d(2, 2)
        if self.config.up_mode == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv0_0 = VGGBlock(self.config.input_channels, f[0], f[0])
        for i in range(1, 5):
            setattr(self, f"conv{i}_0", VGGBlock(f[i - 1], f[i], f[i]))
        # Node x(i, j), j >= 1, takes j skips of width f[i] and one upsampled map of width f[i+1].
        for j in range(1, 5):
            for i in range(0, 5 - j):
                setattr(self, f"conv{i}_{j}", VGGBlock(f[i] * j + f[i + 1], f[i], f[i]))
        n = self.config.num_classes
        if self.config.deep_supervision:
            for k in range(1, 5):
                setattr(self, f"final{k}", nn.Conv2d(f[0], n, kernel_size=1))
        else:
            self.final = nn.Conv2d(f[0], n, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        # Columns computed in upstream's order: x0_0, x1_0, x0_1, x2_0, x1_1, x0_2, ...
        nodes: dict[tuple[int, int], torch.Tensor] = {(0, 0): self.conv0_0(x)}
        for d in range(1, 5):
            nodes[(d, 0)] = getattr(self, f"conv{d}_0")(self.pool(nodes[(d - 1, 0)]))
            for j in range(1, d + 1):
                i = d - j
                skips = [nodes[(i, k)] for k in range(j)]
                up = self.up(nodes[(i + 1, j - 1)])
                nodes[(i, j)] = getattr(self, f"conv{i}_{j}")(torch.cat([*skips, up], 1))
        if self.config.deep_supervision:
            return [getattr(self, f"final{k}")(nodes[(0, k)]) for k in range(1, 5)]
        return self.final(nodes[(0, 4)])


def build_model(config: ModelConfig | None = None) -> NestedUNet:
    """The one factory for the network."""
    return NestedUNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
