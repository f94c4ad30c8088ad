"""NestedUNet matches upstream's structure; checkpoints of both formats load; mismatches are explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from unetpp.config import ModelConfig
from unetpp.errors import CheckpointError
from unetpp.model.checkpoint import load_checkpoint
from unetpp.model.network import build_model, count_parameters

UPSTREAM_PARAMS = 9_163_329  # REFERENCE.md, without deep supervision


def _expected_keys() -> set[str]:
    """Upstream's state-dict names, built from REFERENCE.md's node list, not from the model."""
    nodes = [f"conv{i}_{j}" for j in range(5) for i in range(5 - j)]
    keys = {"final.weight", "final.bias"}
    for n in nodes:
        for c in ("conv1", "conv2"):
            keys |= {f"{n}.{c}.weight", f"{n}.{c}.bias"}
        for b in ("bn1", "bn2"):
            keys |= {f"{n}.{b}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    return keys


def test_parameter_count_and_upstream_key_names() -> None:
    model = build_model()
    assert count_parameters(model) == UPSTREAM_PARAMS
    keys = set(model.state_dict())
    assert keys == _expected_keys()
    assert not any(k.startswith("module.") for k in keys)
    # Input widths from REFERENCE.md: skips first, then the upsampled map.
    assert model.conv0_4.conv1.weight.shape[1] == 32 * 4 + 64
    assert model.conv2_2.conv1.weight.shape[1] == 128 * 2 + 256


def test_logits_shape_and_deep_supervision() -> None:
    x = torch.zeros(1, 3, 96, 96)
    model = build_model().eval()
    with torch.no_grad():
        assert model(x).shape == (1, 1, 96, 96)
        ds = build_model(ModelConfig(deep_supervision=True)).eval()
        outs = ds(x)
    assert isinstance(outs, list) and len(outs) == 4
    assert all(o.shape == (1, 1, 96, 96) for o in outs)


def test_bilinear_variant_has_same_weights_and_different_output(random_checkpoint: Path) -> None:
    near = load_checkpoint(random_checkpoint)
    bil = load_checkpoint(random_checkpoint, up_mode="bilinear")
    assert near.config.up_mode == "nearest" and bil.config.up_mode == "bilinear"
    up = bil.model.up
    assert up.mode == "bilinear" and up.align_corners is True
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 96, 96), dtype=np.float32) * 0.01)
    with torch.no_grad():
        a, b = near.model(x), bil.model(x)
    assert a.shape == b.shape == (1, 1, 96, 96)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_upstream_state_dict_loads_with_identical_logits(random_checkpoint: Path, tmp_path: Path, prefix: str) -> None:
    ours = load_checkpoint(random_checkpoint)
    folder = tmp_path / "models" / "dsb2018_96_NestedUNet_woDS"
    folder.mkdir(parents=True)
    torch.save({prefix + k: v for k, v in ours.model.state_dict().items()}, folder / "model.pth")
    (folder / "config.yml").write_text(yaml.safe_dump({
        "arch": "NestedUNet", "deep_supervision": False, "input_channels": 3, "num_classes": 1,
        "input_w": 96, "input_h": 96, "loss": "LovaszHingeLoss", "epochs": 200}))
    theirs = load_checkpoint(folder / "model.pth")
    assert theirs.config == ModelConfig()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 3, 96, 96), dtype=np.float32) * 0.01)
    with torch.no_grad():
        assert torch.equal(ours.model(x), theirs.model(x))


def test_mismatching_state_dict_lists_missing_unexpected_and_shapes(random_checkpoint: Path, tmp_path: Path) -> None:
    state = dict(load_checkpoint(random_checkpoint).model.state_dict())
    del state["final.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["conv1_0.conv1.weight"] = torch.zeros(64, 16, 3, 3)
    torch.save(state, tmp_path / "model.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "model.pth")
    msg = str(info.value)
    assert "missing keys (1): final.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "conv1_0.conv1.weight: model (64, 32, 3, 3) vs checkpoint (64, 16, 3, 3)" in msg
