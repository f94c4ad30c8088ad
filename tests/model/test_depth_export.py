"""`--depth`: a deeply supervised model exported (and run) at X0,d holds only the nodes that output needs and
gives the PyTorch network's head d; a model without deep supervision refuses d < 4 in one line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unetpp.config import NB_FILTER, ModelConfig
from unetpp.model.checkpoint import save_checkpoint
from unetpp.model.network import build_model, node_count, parameters_at_depth


@pytest.fixture(scope="module")
def ds_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-output NestedUNet with the four deep-supervision heads, seeded random weights, non-trivial BN."""
    torch.manual_seed(3)
    model = build_model(ModelConfig(num_classes=2, deep_supervision=True))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(tmp_path_factory.mktemp("ds") / "ds.pt", model.eval())


def _block(cin: int, mid: int, cout: int) -> int:
    """VGGBlock parameters by hand: two 3x3 convs with bias, two BatchNorms (weight, bias)."""
    return cin * mid * 9 + mid + 2 * mid + mid * cout * 9 + cout + 2 * cout


def _expected_parameters(depth: int, n_out: int = 2) -> int:
    f = NB_FILTER
    total = _block(3, f[0], f[0])
    for i in range(1, depth + 1):
        total += _block(f[i - 1], f[i], f[i])  # the encoder x(i, 0)
    for j in range(1, depth + 1):
        for i in range(0, depth + 1 - j):
            total += _block(f[i] * j + f[i + 1], f[i], f[i])  # x(i, j): j skips and one upsampled map
    return total + f[0] * n_out + n_out  # the 1x1 head


def test_parameters_per_depth_match_the_hand_count() -> None:
    net = build_model(ModelConfig(num_classes=2, deep_supervision=True))
    counts = [parameters_at_depth(net, d) for d in (1, 2, 3, 4)]
    assert counts == [_expected_parameters(d) for d in (1, 2, 3, 4)]
    assert counts == sorted(counts) and counts[0] < counts[-1] / 10  # depth 1 is a small fraction of the net


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_a_pruned_export_equals_forward_depth_and_holds_only_its_nodes(ds_checkpoint: Path, tmp_path: Path,
                                                                        depth: int) -> None:
    import onnx
    import onnxruntime as ort

    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.model.export import export_onnx

    out = tmp_path / f"d{depth}.onnx"
    report = export_onnx(ds_checkpoint, out, depth=depth)
    assert report["depth"] == depth and report["metadata"]["depth"] == depth
    convs = [n for n in onnx.load(str(out)).graph.node if n.op_type == "Conv"]
    assert len(convs) == 2 * node_count(depth) + 1  # two convs per node x(i, j), i + j <= depth, and one head

    x = np.random.default_rng(depth).normal(0, 0.02, (2, 3, 96, 96)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    net = load_checkpoint(ds_checkpoint).model
    with torch.no_grad():
        want = net.forward_depth(torch.from_numpy(x), depth).numpy()
        full = net(torch.from_numpy(x))[depth - 1].numpy()  # the unpruned network's head d
    assert got.shape == (2, 2, 96, 96)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(want, full, atol=1e-5)


def test_the_torch_runtime_runs_the_same_pruned_output(ds_checkpoint: Path) -> None:
    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.runtimes import open_runtime

    x = np.random.default_rng(0).normal(0, 0.02, (1, 3, 96, 96)).astype(np.float32)
    with open_runtime(ds_checkpoint, "torch", depth=2) as rt:
        got = rt.infer(x)
        assert rt.metadata["depth"] == 2
    with torch.no_grad():
        want = load_checkpoint(ds_checkpoint).model.forward_depth(torch.from_numpy(x), 2).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_onnx_cache_keys_the_depth(ds_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unetpp.model.resolve import onnx_for_checkpoint

    monkeypatch.setenv("UNETPP_CACHE", str(tmp_path / "cache"))
    d1, d3 = onnx_for_checkpoint(ds_checkpoint, 1), onnx_for_checkpoint(ds_checkpoint, 3)
    assert d1 != d3 and d1.name.endswith("-d1.onnx") and d3.name.endswith("-d3.onnx")
    assert onnx_for_checkpoint(ds_checkpoint, 1) == d1  # a hit: same file


@pytest.mark.parametrize("command", ["export", "predict", "compile"])
def test_a_model_without_deep_supervision_refuses_a_lower_depth(random_checkpoint: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 command: str) -> None:
    from unetpp.cli.main import main

    monkeypatch.setenv("UNETPP_CACHE", str(tmp_path / "cache"))
    img = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(img), np.full((64, 64, 3), 40, np.uint8))
    argv = {"export": ["export", random_checkpoint, "-o", tmp_path / "x.onnx"],
            "predict": ["predict", img, "-o", tmp_path / "out", "--model", random_checkpoint, "--no-progress"],
            "compile": ["compile", random_checkpoint, "--backend", "onnxruntime", "-o", tmp_path / "x.onnx"]}[command]
    rc = main([str(a) for a in [*argv, "--depth", "2"]])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "deep supervision" in err and "--depth 2" in err, err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "out" / "img_labels.png").exists()


def test_the_default_depth_comes_from_the_model(tmp_path: Path) -> None:
    import onnx

    from unetpp.model.export import export_onnx

    torch.manual_seed(5)
    model = build_model(ModelConfig(num_classes=1, deep_supervision=True)).eval()
    ckpt = save_checkpoint(tmp_path / "ds_d2.pt", model, meta={"default_depth": 2})
    report = export_onnx(ckpt, tmp_path / "m.onnx")  # no depth asked: the checkpoint's own default_depth
    assert report["depth"] == 2
    assert sum(n.op_type == "Conv" for n in onnx.load(str(tmp_path / "m.onnx")).graph.node) == 2 * node_count(2) + 1


def test_load_and_compile_take_a_depth(ds_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    import unetpp
    from unetpp.compile import compile_model

    monkeypatch.setenv("UNETPP_CACHE", str(tmp_path / "cache"))
    with unetpp.load(ds_checkpoint, depth=1, precision="fp32") as model:
        assert model.runtime.metadata["depth"] == 1 and model.info["runtime"]["depth"] == 1
        labels, _ = model.predict(np.full((64, 64), 30, np.uint8))
        assert labels.shape == (64, 64)
    report = compile_model(ds_checkpoint, "onnxruntime", tmp_path / "d1.onnx", depth=1)
    assert report["depth"] == 1
    ops = [n.op_type for n in onnx.load(str(tmp_path / "d1.onnx")).graph.node]
    assert sum("Conv" in op for op in ops) == 2 * node_count(1) + 1  # Conv or ORT's FusedConv
