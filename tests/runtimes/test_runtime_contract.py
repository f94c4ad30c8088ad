"""The shared contract every runtime passes, and each runtime's agreement with the PyTorch reference."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from unetpp.errors import InputError, ModelFileError, RuntimeUnavailable
from unetpp.model.checkpoint import load_checkpoint
from unetpp.model.export import synthetic_nuclei
from unetpp.runtimes import Runtime, get_runtime, known_runtimes

# Max |logit difference| allowed against the PyTorch fp32 reference, per runtime (all fp32 on the CPU here).
AGREEMENT_ATOL = {"onnxruntime": 1e-4, "openvino": 1e-4, "torch": 1e-6, "bioimageio": 1e-4}
CHECKPOINT_RUNTIMES = {"torch"}  # these take the .pt; bioimageio a zoo package; the others the exported .onnx


@pytest.fixture(scope="module")
def zoo_package(random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random checkpoint as a bioimage.io package in the network's own (BGR) channel order."""
    from unetpp.zoo.export import export_bioimageio

    out = tmp_path_factory.mktemp("zoo") / "random.zip"
    export_bioimageio(random_checkpoint, out, channel_order="bgr")
    return out


def _build(name: str, model: Path) -> Runtime:
    try:
        return get_runtime(name, model, threads=2)
    except RuntimeUnavailable as exc:
        pytest.skip(f"{name} not available: {exc}")


@pytest.fixture(params=known_runtimes())
def runtime(request: pytest.FixtureRequest, random_checkpoint: Path, onnx_model: Path) -> Runtime:
    if request.param == "bioimageio":
        model = request.getfixturevalue("zoo_package")
    else:
        model = random_checkpoint if request.param in CHECKPOINT_RUNTIMES else onnx_model
    return _build(request.param, model)


@pytest.fixture(scope="module")
def reference(random_checkpoint: Path) -> tuple[np.ndarray, np.ndarray]:
    x = synthetic_nuclei(2, seed=3)
    with torch.no_grad():
        y = load_checkpoint(random_checkpoint).model(torch.from_numpy(x)).numpy()
    return x, y


def test_construct_is_cheap_and_picklable(runtime: Runtime) -> None:
    assert not runtime.active
    clone = pickle.loads(pickle.dumps(runtime))
    assert clone.name == runtime.name and clone.model == runtime.model and not clone.active


def test_context_manager_shape_dtype(runtime: Runtime, reference: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = reference
    with runtime as rt:
        assert rt.active
        y = rt.infer(x[:1])
        assert y.shape == (1, 1, 96, 96) and y.dtype == np.float32
        assert rt.last_compute_ms is not None and rt.last_compute_ms > 0
        with pytest.raises(InputError, match=r"expected \(N, 3, 96, 96\), found \(1, 3, 64, 64\)"):
            rt.infer(np.zeros((1, 3, 64, 64), np.float32))
        with pytest.raises(InputError, match="float32"):
            rt.infer(x[:1].astype(np.float64))
        # the pickled copy activates on its own after the original is live
        clone = pickle.loads(pickle.dumps(rt))
        assert not clone.active
    assert not runtime.active


def test_agreement_with_pytorch_reference(runtime: Runtime, reference: tuple[np.ndarray, np.ndarray]) -> None:
    x, ref = reference
    with runtime as rt:
        got = rt.infer(x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= AGREEMENT_ATOL[runtime.name]


def test_wrong_model_file_is_named(tmp_path: Path, random_checkpoint: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_text("not a model\n")
    with pytest.raises(ModelFileError, match=r"model\.onnx") as info:
        get_runtime("onnxruntime", fake).activate()
    assert "a text file" in str(info.value)
    with pytest.raises(ModelFileError, match="zip archive"):
        get_runtime("onnxruntime", random_checkpoint).activate()
    with pytest.raises(ModelFileError, match=r"\.pt or \.pth"):
        get_runtime("torch", fake).activate()


def test_unknown_options_and_backend_are_rejected(random_checkpoint: Path) -> None:
    with pytest.raises(InputError, match="torch options"):
        get_runtime("torch", random_checkpoint, fast=True)
    with pytest.raises(InputError, match="one of"):
        get_runtime("tensorrt", random_checkpoint)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_paths_fail_clearly_without_cuda(random_checkpoint: Path, onnx_model: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match="CUDA"):
        get_runtime("torch", random_checkpoint, device="cuda").activate()
    with pytest.raises(RuntimeUnavailable, match="cuda_graphs"):
        get_runtime("torch", random_checkpoint, cuda_graphs=True).activate()
    with pytest.raises(RuntimeUnavailable, match="CUDAExecutionProvider.*CPUExecutionProvider"):
        get_runtime("onnxruntime", onnx_model, providers="cuda").activate()


def test_torch_options_on_cpu(random_checkpoint: Path, reference: tuple[np.ndarray, np.ndarray]) -> None:
    """channels_last runs on the CPU and matches (bf16 is left out: ~10 s on a CPU without bf16 units)."""
    x, ref = reference
    with get_runtime("torch", random_checkpoint, channels_last=True) as rt:
        assert np.abs(rt.infer(x) - ref).max() <= AGREEMENT_ATOL["onnxruntime"]
    with pytest.raises(InputError, match="torch dtype"):
        get_runtime("torch", random_checkpoint, dtype="int4").activate()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("opts", [{}, {"dtype": "fp16", "channels_last": True}, {"cuda_graphs": True}])
def test_torch_cuda(random_checkpoint: Path, reference: tuple[np.ndarray, np.ndarray], opts: dict) -> None:
    x, ref = reference
    with get_runtime("torch", random_checkpoint, device="cuda", **opts) as rt:
        for _ in range(2):  # the second call replays the captured graph
            got = rt.infer(x)
    tol = 1e-3 if not opts.get("dtype") else 0.05 * max(1.0, np.abs(ref).max())
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= tol
