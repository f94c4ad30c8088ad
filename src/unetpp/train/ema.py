"""An exponential moving average of a model's weights, kept beside training and saved in its state.

Averaging the weights of the last few hundred steps gives a model that is good at any point of a long schedule
(not only once the rate has decayed), which is what a CPU run that may be stopped at any epoch needs. Only
parameters are averaged; BatchNorm statistics are taken from the live model and re-estimated before evaluation.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightEMA:
    """ema = decay * ema + (1 - decay) * weights, after every optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()}
        self.steps = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, p in model.named_parameters():
            self.shadow[k].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        self.steps += 1

    def averaged(self, model: nn.Module) -> nn.Module:
        """A copy of `model` (buffers included) holding the averaged weights, in eval mode."""
        out = copy.deepcopy(model)
        with torch.no_grad():
            for k, p in out.named_parameters():
                p.copy_(self.shadow[k])
        return out.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.steps = float(state["decay"]), int(state["steps"])
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
