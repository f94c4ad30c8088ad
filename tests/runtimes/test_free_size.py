"""Free height/width: the shipped instance model exported with dynamic H/W runs at two sizes on ONNX Runtime and
OpenVINO (fp32 and the int8 builds of `unetpp compile`) and matches the PyTorch reference; a fixed-size export
keeps refusing other sizes; the guide model still exports fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.model.export import synthetic_nuclei
from unetpp.model.resolve import shipped_checkpoint
from unetpp.runtimes import get_runtime

SECOND = (160, 224)  # a non-square size, a multiple of 16 on both sides
ATOL = 1e-3  # fp32 logits, PyTorch vs ORT/OpenVINO (BN folding, summation order)


def _inputs(h: int, w: int, n: int = 2) -> np.ndarray:
    x = synthetic_nuclei(n, seed=3)  # 96x96 nuclei-like inputs, tiled up to (h, w)
    reps = (1, 1, -(-h // 96), -(-w // 96))
    return np.ascontiguousarray(np.tile(x, reps)[:, :, :h, :w])


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from unetpp.model.export import export_onnx

    base = tmp_path_factory.mktemp("free")
    ckpt = shipped_checkpoint("instance")
    dyn, fixed = base / "instance_free.onnx", base / "instance_fixed.onnx"
    rep = export_onnx(ckpt, dyn)  # the instance model states a scale rule: free H/W by default
    rep_fixed = export_onnx(ckpt, fixed, dynamic_size=False)
    torch_rt = get_runtime("torch", ckpt, threads=2).activate()
    own = torch_rt.input_shape[1:]  # the size the model was trained and exported at (its preprocess size)
    sizes = [own, SECOND]
    ref = {s: torch_rt.infer(_inputs(*s)) for s in sizes}
    return {"base": base, "dyn": dyn, "fixed": fixed, "report": rep, "report_fixed": rep_fixed, "ref": ref,
            "torch": torch_rt, "own": own, "sizes": sizes}


def test_export_states_free_size_and_checks_parity_at_a_second_size(exports: dict) -> None:
    rep = exports["report"]
    assert rep["dynamic_size"] and rep["metadata"]["spatial"] == {"dynamic": True, "step": 16}
    assert rep["second_size"]["parity_input_shape"][2:] == [160, 224] and rep["second_size"]["within_atol"]
    assert not exports["report_fixed"]["dynamic_size"] and "spatial" not in exports["report_fixed"]["metadata"]


def test_guide_model_exports_fixed_96(tmp_path: Path) -> None:
    from unetpp.model.export import export_onnx

    rep = export_onnx(shipped_checkpoint("guide"), tmp_path / "g.onnx")
    assert not rep["dynamic_size"]
    rt = get_runtime("onnxruntime", tmp_path / "g.onnx", threads=1).activate()
    assert rt.size_step is None and rt.input_shape == (3, 96, 96)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
def test_free_size_runs_at_two_sizes_and_matches_torch(exports: dict, backend: str) -> None:
    pytest.importorskip("openvino") if backend == "openvino" else None
    model = shipped_checkpoint("instance") if backend == "torch" else exports["dyn"]
    rt = get_runtime(backend, model, threads=2).activate()
    assert rt.size_step == 16 and rt.input_shape == (3, *exports["own"])
    for size in exports["sizes"]:
        y = rt.infer(_inputs(*size))
        assert y.shape == (2, 2, *size)
        assert np.abs(y - exports["ref"][size]).max() < ATOL
    with pytest.raises(InputError, match="multiples of 16"):
        rt.infer(_inputs(100, 96))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fixed_export_takes_its_own_size_only(exports: dict, backend: str) -> None:
    pytest.importorskip("openvino") if backend == "openvino" else None
    rt = get_runtime(backend, exports["fixed"], threads=2).activate()
    assert rt.size_step is None
    own = exports["own"]
    assert np.abs(rt.infer(_inputs(*own)) - exports["ref"][own]).max() < ATOL
    with pytest.raises(InputError, match="input shape"):
        rt.infer(_inputs(*SECOND))


@pytest.mark.parametrize("backend, suffix", [("onnxruntime", ".onnx"), ("openvino", ".xml")])
def test_int8_builds_keep_free_size(exports: dict, backend: str, suffix: str, tmp_path: Path) -> None:
    """`unetpp compile --int8` from the free-size export: the artefact still runs at any multiple of 16, and its
    decisions agree with the PyTorch reference on nearly every pixel (int8 moves logits a little)."""
    pytest.importorskip("openvino") if backend == "openvino" else None
    if backend == "openvino":
        pytest.importorskip("nncf")
    from unetpp.compile.api import compile_model

    calib = tmp_path / "calib"
    calib.mkdir()
    for i, x in enumerate(synthetic_nuclei(3, seed=7)):
        np.save(calib / f"c{i}.npy", x)
    out = tmp_path / f"int8{suffix}"
    compile_model(exports["dyn"], backend, out, int8=True, calib=calib, calib_count=3)
    rt = get_runtime(backend, out, threads=2).activate()
    assert rt.size_step == 16
    for size in exports["sizes"]:
        y = rt.infer(_inputs(*size))
        ref = exports["ref"][size]
        assert y.shape == ref.shape
        assert np.mean((y > 0) != (ref > 0)) < 0.02
