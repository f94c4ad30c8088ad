"""NestedUNet (UNet++) with upstream's module names, so upstream state dicts load unchanged."""

from __future__ import annotations

import torch
from torch import nn

from unetpp.config import NB_FILTER, ModelConfig
from unetpp.errors import UnetppError, expected_found


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

    @property
    def max_depth(self) -> int:
        """The deepest output node X0,d this network has (4: UNet++ L4)."""
        return 4

    def depths(self) -> tuple[int, ...]:
        """The output depths this network can answer at: 1..4 with deep supervision (a head on each X0,d), else 4."""
        return tuple(range(1, 5)) if self.config.deep_supervision else (4,)

    def check_depth(self, depth: int) -> int:
        if depth not in self.depths():
            raise UnetppError(expected_found("output depth", f"one of {list(self.depths())} for this network "
                                             f"(deep supervision {'on' if self.config.deep_supervision else 'off'})",
                                             depth))
        return int(depth)

    def _nodes(self, x: torch.Tensor, depth: int) -> dict[tuple[int, int], torch.Tensor]:
        """Nodes x(i, j) with i + j <= depth, in upstream's order: x0_0, x1_0, x0_1, x2_0, x1_1, x0_2, ...
        (X0,d needs exactly these: UNet++'s pruning at inference)."""
        nodes: dict[tuple[int, int], torch.Tensor] = {(0, 0): self.conv0_0(x)}
        for d in range(1, depth + 1):
            nodes[(d, 0)] = getattr(self, f"conv{d}_0")(self.pool(nodes[(d - 1, 0)]))
            for j in range(1, d + 1):
                i = d - j
                skips = [nodes[(i, k)] for k in range(j)]
                up = self.up(nodes[(i + 1, j - 1)])
                nodes[(i, j)] = getattr(self, f"conv{i}_{j}")(torch.cat([*skips, up], 1))
        return nodes

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits at X0,4; with deep supervision the four heads' logits [X0,1 .. X0,4] (training's contract)."""
        nodes = self._nodes(x, 4)
        if self.config.deep_supervision:
            return [getattr(self, f"final{k}")(nodes[(0, k)]) for k in range(1, 5)]
        return self.final(nodes[(0, 4)])

    def forward_depth(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        """Logits of the head at X0,depth, computing only the nodes it needs (a deeply supervised model's
        pruned inference); depth 4 of a model without deep supervision is its one output."""
        self.check_depth(depth)
        nodes = self._nodes(x, depth)
        head = getattr(self, f"final{depth}") if self.config.deep_supervision else self.final
        return head(nodes[(0, depth)])


class PrunedNestedUNet(nn.Module):
    """One output of a NestedUNet at a fixed depth (X0,depth): what export and the runtimes run. At depth 4 it
    is the full network's scored output; below, the deeper decoder nodes are never computed."""

    def __init__(self, net: NestedUNet, depth: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.depth = net.check_depth(depth or net.max_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_depth(x, self.depth)


def node_count(depth: int) -> int:
    """Convolution blocks evaluated for X0,depth: the nodes x(i, j) with i + j <= depth."""
    return (depth + 1) * (depth + 2) // 2


def parameters_at_depth(net: NestedUNet, depth: int) -> int:
    """Parameters the pruned network X0,depth uses: its nodes x(i, j), i + j <= depth, and its head."""
    net.check_depth(depth)
    head = getattr(net, f"final{depth}") if net.config.deep_supervision else net.final
    blocks = [getattr(net, f"conv{i}_{j}") for i in range(depth + 1) for j in range(depth + 1 - i)]
    return sum(count_parameters(m) for m in [*blocks, head])


def build_model(config: ModelConfig | None = None) -> NestedUNet:
    """The one factory for the network."""
    return NestedUNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
