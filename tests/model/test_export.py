"""ONNX export: the guide's names, opset 11, dynamic or fixed batch, and agreement with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from unetpp.cli.main import main
from unetpp.config import PreprocessConfig
from unetpp.infer.run import run_inference
from unetpp.model.checkpoint import file_sha256, load_checkpoint
from unetpp.model.export import synthetic_nuclei

ORT_VS_TORCH_ATOL = 1e-4  # fp32 on both sides; BN folded into the convs by the exporter


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _dim(value_info: onnx.ValueInfoProto, axis: int) -> int | str:
    d = value_info.type.tensor_type.shape.dim[axis]
    return d.dim_value if d.HasField("dim_value") else d.dim_param


def test_names_opset_and_dynamic_batch(onnx_model: Path) -> None:
    proto = onnx.load(str(onnx_model))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["actual_input_1"]
    assert [o.name for o in proto.graph.output] == ["output1"]
    assert {o.domain: o.version for o in proto.opset_import}.get("") == 11
    assert isinstance(_dim(proto.graph.input[0], 0), str) and isinstance(_dim(proto.graph.output[0], 0), str)
    assert [_dim(proto.graph.input[0], a) for a in (1, 2, 3)] == [3, 96, 96]
    sess = _session(onnx_model)
    for n in (1, 3):
        out = sess.run(None, {"actual_input_1": synthetic_nuclei(n, seed=n)})[0]
        assert out.shape == (n, 1, 96, 96) and out.dtype == np.float32


def test_ort_matches_pytorch_on_logits(onnx_model: Path, random_checkpoint: Path) -> None:
    x = synthetic_nuclei(3, seed=7)
    ref_model = load_checkpoint(random_checkpoint).model
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).numpy()
    got = _session(onnx_model).run(None, {"actual_input_1": x})[0]
    assert np.abs(got - ref).max() <= ORT_VS_TORCH_ATOL
    assert np.abs(ref).max() > 1e-3  # the comparison is not between two near-zero maps


def test_parity_report_beside_the_file(onnx_model: Path, random_checkpoint: Path) -> None:
    report = json.loads(Path(str(onnx_model) + ".parity.json").read_text())
    assert report["opset"] == 11 and report["dynamic"] is True
    assert report["input_names"] == ["actual_input_1"] and report["output_names"] == ["output1"]
    assert report["max_abs_diff"] <= ORT_VS_TORCH_ATOL
    assert report["flipped_pixels"] == 0
    assert report["checkpoint_sha256"] == file_sha256(random_checkpoint)
    assert report["torch_version"] == torch.__version__ and report["onnx_version"] == onnx.__version__


def test_synthetic_parity_input_is_in_the_guides_range() -> None:
    x = synthetic_nuclei(2)
    cfg = PreprocessConfig()
    lo = (0 - max(cfg.mean)) / min(cfg.std) / 255
    hi = (1 - min(cfg.mean)) / min(cfg.std) / 255
    assert x.shape == (2, 3, 96, 96) and x.dtype == np.float32
    assert lo - 1e-6 <= x.min() and x.max() <= hi + 1e-6
    assert x.std() > 1e-3  # bright nuclei on a dark background, not a constant image


def test_cli_fixed_batch(random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bs4.onnx"
    assert main(["export", str(random_checkpoint), "-o", str(out), "--batch", "4"]) == 0
    assert "opset 11" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert _dim(proto.graph.input[0], 0) == 4 and _dim(proto.graph.output[0], 0) == 4
    sess = _session(out)
    assert sess.run(None, {"actual_input_1": synthetic_nuclei(4)})[0].shape == (4, 1, 96, 96)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sess.run(None, {"actual_input_1": synthetic_nuclei(1)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bs4.onnx", "bs4.onnx.parity.json"]
    s = run_inference(out, None, tmp_path / "o", batch_size=1, progress=False)  # padded to the model's 4
    assert s["n_padded"] == 3 and s["runtime"]["static_batch"] == 4


def test_cli_missing_checkpoint_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "m.onnx")])
    assert rc != 0
    assert "nope.pt" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
