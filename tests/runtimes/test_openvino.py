"""OpenVINO runtime: agreement with the PyTorch reference, dynamic/static batch, IR compiled by `unetpp compile`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from unetpp.compile import compile_model  # noqa: E402
from unetpp.config import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from unetpp.errors import InputError  # noqa: E402
from unetpp.model.export import synthetic_nuclei  # noqa: E402
from unetpp.model.network import build_model  # noqa: E402
from unetpp.runtimes import get_runtime  # noqa: E402

# fp32 on both sides; OpenVINO fuses BN and reorders sums. Logits of this model are O(1).
OV_ATOL = 1e-4


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, np.ndarray]:
    torch.manual_seed(0)
    model = build_model().eval()
    path = tmp_path_factory.mktemp("ov") / "m.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 96, 96), str(path), dynamo=False, opset_version=13,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return model, path, synthetic_nuclei(3, seed=1)


def _torch(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_onnx_agrees_with_pytorch_at_two_batch_sizes(ref) -> None:
    model, path, x = ref
    expected = _torch(model, x)
    with get_runtime("openvino", path, threads=2, hint="latency") as rt:
        assert rt.static_batch is None
        out3 = rt.infer(x)
        out1 = rt.infer(x[:1])  # a new batch size: reshaped and compiled again
        assert rt.last_compute_ms is not None and rt.last_compute_ms > 0
        assert rt.version() != "not installed"
    assert out3.shape == (3, 1, 96, 96) and out3.dtype == np.float32
    np.testing.assert_allclose(out3, expected, atol=OV_ATOL, rtol=0)
    np.testing.assert_allclose(out1, expected[:1], atol=OV_ATOL, rtol=0)


def test_ir_from_compile_loads_and_agrees(ref, tmp_path: Path) -> None:
    model, path, x = ref
    report = compile_model(path, "openvino", tmp_path / "m.xml")
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()
    assert report["dynamic_batch"] and (tmp_path / "m.compile.json").is_file()
    with get_runtime("openvino", tmp_path / "m.xml") as rt:
        np.testing.assert_allclose(rt.infer(x), _torch(model, x), atol=OV_ATOL, rtol=0)


def test_static_ir_refuses_other_batch_sizes(ref, tmp_path: Path) -> None:
    model, path, x = ref
    compile_model(path, "openvino", tmp_path / "b2.xml", batch=2)
    with get_runtime("openvino", tmp_path / "b2.xml") as rt:
        assert rt.static_batch == 2
        np.testing.assert_allclose(rt.infer(x[:2]), _torch(model, x[:2]), atol=OV_ATOL, rtol=0)
        with pytest.raises(InputError, match="expected 2, found 3"):
            rt.infer(x)


def test_bad_options_are_named() -> None:
    with pytest.raises(InputError, match="hint"):
        get_runtime("openvino", "m.onnx", hint="fastest")
    with pytest.raises(InputError, match="nthreads"):
        get_runtime("openvino", "m.onnx", nthreads=2)
