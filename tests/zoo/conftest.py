"""Zoo packages built by the tests themselves: the shipped checkpoint's (through the CLI) and a 1-conv toy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from unetpp.eval.metrics import sigmoid
from unetpp.zoo.package import PackageContent, TensorSpec, write_package

TOY_SIZE = 16
TOY_PRE = ({"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
           {"id": "scale_linear", "kwargs": {"gain": 1 / 255, "offset": -0.5}},
           {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}})


@pytest.fixture(scope="session")
def shipped_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`unetpp export --format bioimageio -o PKG.zip` on the shipped checkpoint."""
    from unetpp.cli.main import main

    out = tmp_path_factory.mktemp("zoo") / "unetpp_nuclei.zip"
    assert main(["export", "--format", "bioimageio", "-o", str(out)]) == 0
    return out


def build_toy_package(folder: Path, name: str = "toy.zip", torchscript: bool = True) -> Path:
    """A 1x1-conv model (3 -> 1 channel) exported to ONNX and TorchScript, packaged with write_package."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 1, 1).eval()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([4.0, -2.0, 1.0]).reshape(1, 3, 1, 1))
        net.bias.fill_(0.25)
    dummy = torch.zeros(1, 3, TOY_SIZE, TOY_SIZE)
    onnx_path, ts_path = folder / "toy.onnx", folder / "toy.pt"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (dummy,), str(onnx_path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=11, dynamo=False)
        torch.jit.trace(net, dummy).save(str(ts_path))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1, 3, TOY_SIZE, TOY_SIZE), dtype=np.uint8)
    with torch.no_grad():
        logits = net(torch.from_numpy(x.astype(np.float32) / 255 - 0.5)).numpy()
    content = PackageContent(
        name="toy conv model", description="one 1x1 convolution, for tests",
        input=TensorSpec("raw", "RGB image", ("red", "green", "blue"), (TOY_SIZE, TOY_SIZE), "uint8", (0, 255),
                         TOY_PRE),
        output=TensorSpec("prob", "foreground probability", ("foreground",), (TOY_SIZE, TOY_SIZE), "float32",
                          (0.0, 1.0), ({"id": "sigmoid"},)),
        onnx=onnx_path, opset=11, torchscript=ts_path if torchscript else None,
        pytorch_version=torch.__version__, test_input=x, test_output=sigmoid(logits).astype(np.float32),
        readme="# toy\n", cite=[{"text": "toy", "url": "https://example.com/"}], tags=["test"],
        root_weights="torchscript" if torchscript else "onnx",
    )
    return write_package(folder / name, content)


@pytest.fixture(scope="session")
def instance_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`unetpp export instance --format bioimageio -o PKG.zip`: the shipped 2-output instance model."""
    from unetpp.cli.main import main

    out = tmp_path_factory.mktemp("zoo_instance") / "unetpp_instance.zip"
    assert main(["export", "instance", "--format", "bioimageio", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def toy_builder():
    """build_toy_package, for tests that need a variant."""
    return build_toy_package


@pytest.fixture(scope="session")
def toy_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_package(tmp_path_factory.mktemp("toy"))


def build_identity_package(folder: Path, name: str, steps: tuple[dict, ...], x: np.ndarray) -> Path:
    """An ONNX-only package of an identity 1x1 conv (3 -> 3 channels) whose test output is our own pre-processing
    of `x` (uint8, (1, 3, H, W)): the zoo's test of it passes exactly when our steps equal bioimageio.core's."""
    from unetpp.model.zoo_processing import make_preprocess

    h, w = x.shape[2:]
    net = torch.nn.Conv2d(3, 3, 1, bias=False).eval()
    with torch.no_grad():
        net.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
    onnx_path = folder / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, h, w),), str(onnx_path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=11, dynamo=False)
    ours = make_preprocess(steps, 3, "raw")(x[0].transpose(1, 2, 0))[None]
    content = PackageContent(
        name="identity model", description="identity, for pre-processing tests",
        input=TensorSpec("raw", "RGB image", ("red", "green", "blue"), (h, w), "uint8", (0, 255), steps),
        output=TensorSpec("out", "the pre-processed input", ("c0", "c1", "c2"), (h, w), "float32"),
        onnx=onnx_path, opset=11, test_input=x, test_output=ours, readme="# identity\n",
        cite=[{"text": "toy", "url": "https://example.com/"}], root_weights="onnx",
    )
    return write_package(folder / f"{name}.zip", content)


@pytest.fixture(scope="session")
def identity_builder():
    return build_identity_package
