"""UNet++ pruning: X0,d from only the nodes it needs, equal to the full network's head d."""

from __future__ import annotations

import pytest
import torch

from unetpp.config import ModelConfig
from unetpp.errors import UnetppError
from unetpp.model.network import PrunedNestedUNet, build_model, node_count


@pytest.fixture(scope="module")
def ds_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(num_classes=2, deep_supervision=True)).eval()


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_pruned_output_equals_the_full_networks_head(ds_model, depth):
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(PrunedNestedUNet(ds_model, depth)(x), ds_model(x)[depth - 1])


def test_pruned_network_computes_only_the_nodes_it_needs(ds_model):
    called: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: called.append(n))
             for name, m in ds_model.named_children() if name.startswith("conv")]
    try:
        with torch.no_grad():
            PrunedNestedUNet(ds_model, 2)(torch.randn(1, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    assert sorted(called) == sorted(["conv0_0", "conv1_0", "conv0_1", "conv2_0", "conv1_1", "conv0_2"])
    assert [node_count(d) for d in range(1, 5)] == [3, 6, 10, 15]


def test_a_model_without_deep_supervision_answers_only_at_full_depth():
    torch.manual_seed(1)
    plain = build_model().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(PrunedNestedUNet(plain)(x), plain(x))
    with pytest.raises(UnetppError, match=r"one of \[4\]"):
        PrunedNestedUNet(plain, 2)
