"""Fixtures of the default-runtime tests: a small random-weight checkpoint whose int8 build takes seconds, and an
environment with the default runtime switched on (the suite's own conftest switches it off)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NestedUNet with deep supervision and seeded random weights that runs at depth 1 by default (its own
    `default_depth`): the pruned graph has 0.1 M parameters, so its int8 build and check take seconds. Random
    weights find no nuclei: its int8 check must never pass."""
    import torch

    from unetpp.config import ModelConfig
    from unetpp.model.checkpoint import save_checkpoint
    from unetpp.model.network import build_model

    torch.manual_seed(1)
    model = build_model(ModelConfig(deep_supervision=True))
    return save_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.pt", model, meta={"default_depth": 1})
