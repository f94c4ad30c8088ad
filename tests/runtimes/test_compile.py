"""`unetpp compile`: ORT QDQ int8 that runs and agrees with fp32, the accuracy guard, static batches, atomic outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from unetpp.cli.main import main
from unetpp.compile import AccuracyDropError, compile_model
from unetpp.config import INPUT_NAME, OUTPUT_NAME
from unetpp.data.prepare import prepare_dsb2018
from unetpp.data.preprocess import list_inputs, preprocess_folder, read_gray, read_input
from unetpp.data.synthetic import make_synthetic_dsb
from unetpp.errors import InputError
from unetpp.model.network import build_model
from unetpp.runtimes import get_runtime

# A random-weights model: int8 moves logits near the 0.5 threshold, so judge decisions, not values.
MAX_FLIPPED_SHARE = 0.2
MAX_IOU_CHANGE = 0.1


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Generated nuclei prepared and pre-processed as the guide does (3 train inputs for calibration, 4 val with
    masks) and a random-weights model whose BatchNorm statistics were estimated on them, exported to ONNX opset 11."""
    base = tmp_path_factory.mktemp("compile")
    root = make_synthetic_dsb(base / "syn", n=8, seed=3, n_val=4)
    prepare_dsb2018(root / "stage1_train", base / "d96", progress=False)
    train = (root / "train_ids.txt").read_text().split()
    val = (root / "val_ids.txt").read_text().split()
    preprocess_folder(base / "d96" / "images", base / "calib", train[:3], progress=False)
    preprocess_folder(base / "d96" / "images", base / "val", val, progress=False)
    torch.manual_seed(0)
    model = build_model()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the one pass below
    x = np.stack([read_input(p) for p in list_inputs(base / "calib") + list_inputs(base / "val")])
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(x))
    model.eval()
    onnx_path = base / "m.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 96, 96), str(onnx_path), dynamo=False, opset_version=11,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    val_files = list_inputs(base / "val")
    xv = np.stack([read_input(p) for p in val_files])
    with torch.no_grad():
        ref = model(torch.from_numpy(xv)).numpy()[:, 0]
    masks = [read_gray(base / "d96" / "masks" / "0" / f"{p.stem}.png") for p in val_files]
    return {"base": base, "onnx": onnx_path, "calib": base / "calib", "val": base / "val",
            "masks": base / "d96" / "masks" / "0", "xv": xv, "ref": ref, "gt": [m > 127 for m in masks]}


def _iou(logits: np.ndarray, gt: np.ndarray) -> float:
    pred = logits > 0.5
    return (np.count_nonzero(pred & gt) + 1e-5) / (np.count_nonzero(pred | gt) + 1e-5)


def test_ort_int8_is_qdq_runs_and_agrees(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    report = compile_model(setup["onnx"], "onnxruntime", out, int8=True, calib=setup["calib"])
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    # per-channel weights: some DequantizeLinear carries a vector of scales
    inits = {i.name: i for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)
    assert report["quantization"]["activations"] == "QUInt8" and len(report["calibration"]["files"]) == 3
    with get_runtime("onnxruntime", out) as rt:
        y = rt.infer(setup["xv"])[:, 0]
    flipped = np.count_nonzero((y > 0.5) != (setup["ref"] > 0.5)) / y.size
    assert flipped < MAX_FLIPPED_SHARE
    iou_fp32 = np.mean([_iou(r, g) for r, g in zip(setup["ref"], setup["gt"])])
    iou_int8 = np.mean([_iou(q, g) for q, g in zip(y, setup["gt"])])
    assert abs(iou_fp32 - iou_int8) < MAX_IOU_CHANGE


def test_guard_refuses_and_writes_nothing(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    with pytest.raises(AccuracyDropError, match="nothing was written"):
        compile_model(setup["onnx"], "onnxruntime", out, val=setup["val"], masks=setup["masks"], max_iou_drop=-1.0)
    assert list(tmp_path.iterdir()) == []  # no artefact, no report, no temporary folder left


def test_guard_passes_and_records_iou(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "f.onnx"
    rc = main(["compile", str(setup["onnx"]), "--backend", "onnxruntime", "-o", str(out), "--val", str(setup["val"]),
               "--masks", str(setup["masks"]), "--batch", "2"])
    assert rc == 0 and out.is_file()
    import json

    acc = json.loads((tmp_path / "f.compile.json").read_text())["accuracy"]
    expected = np.mean([_iou(r, g) for r, g in zip(setup["ref"], setup["gt"])])
    assert acc["passed"] and acc["n_images"] == 4
    assert abs(acc["iou_guide_reference"] - expected) < 1e-3
    assert abs(acc["iou_drop"]) < 1e-3  # an optimised fp32 graph scores as its source
    with get_runtime("onnxruntime", out) as rt:
        assert rt.static_batch == 2
    assert "guide IoU on 4 val images" in capsys.readouterr().out


def test_cli_refusal_exit_code(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "f.xml"
    rc = main(["compile", str(setup["onnx"]), "--backend", "openvino", "-o", str(out), "--val", str(setup["val"]),
               "--masks", str(setup["masks"]), "--max-iou-drop", "-1"])
    assert rc != 0 and not out.exists() and not out.with_suffix(".bin").exists()
    assert "nothing was written" in capsys.readouterr().err


def test_calibration_on_val_is_refused(setup: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="validation ids"):
        compile_model(setup["onnx"], "onnxruntime", tmp_path / "q.onnx", int8=True, calib=setup["val"],
                      val=setup["val"], masks=setup["masks"])
    with pytest.raises(InputError, match="--calib"):
        compile_model(setup["onnx"], "openvino", tmp_path / "q.xml", int8=True)
    with pytest.raises(InputError, match="ending in .xml"):
        compile_model(setup["onnx"], "openvino", tmp_path / "q.onnx")


@pytest.mark.slow
def test_openvino_nncf_int8_runs_and_agrees(setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "q.xml"
    report = compile_model(setup["onnx"], "openvino", out, int8=True, calib=setup["calib"], calib_count=3)
    assert report["quantization"]["method"] == "nncf.quantize"
    assert "FakeQuantize" in out.read_text()
    # the model input's quantizer spans exactly the calibration inputs' values: nothing an input holds is clipped
    import openvino as ov

    x = np.stack([read_input(p) for p in list_inputs(setup["calib"])])  # the 3 calibration inputs
    fq = next(op for op in ov.Core().read_model(str(out)).get_ordered_ops() if op.get_type_name() == "FakeQuantize"
              and op.input_value(0).get_node().get_type_name() == "Parameter")
    ranges = [float(np.ravel(fq.input_value(k).get_node().get_data())[0]) for k in range(1, 5)]
    assert ranges == pytest.approx([x.min(), x.max(), x.min(), x.max()], rel=1e-6)
    assert report["quantization"]["input_range"] == pytest.approx([x.min(), x.max()], rel=1e-6)
    with get_runtime("openvino", out) as rt:
        y = rt.infer(setup["xv"])[:, 0]
    assert np.count_nonzero((y > 0.5) != (setup["ref"] > 0.5)) / y.size < MAX_FLIPPED_SHARE


def test_artefacts_carry_the_source_models_preprocessing(setup: dict, tmp_path: Path) -> None:
    """The ONNX metadata (here a distinctive mean) survives into the optimised ONNX and the OpenVINO IR."""
    import onnx

    from unetpp.config import ModelConfig, PreprocessConfig
    from unetpp.model.metadata import build_metadata, write_onnx_metadata

    src = tmp_path / "meta.onnx"
    proto = onnx.load(str(setup["onnx"]))
    write_onnx_metadata(proto, build_metadata(ModelConfig(), PreprocessConfig(mean=(0.1, 0.2, 0.3))))
    onnx.save(proto, str(src))
    for backend, out in (("onnxruntime", tmp_path / "o.onnx"), ("openvino", tmp_path / "o.xml")):
        compile_model(src, backend, out)
        with get_runtime(backend, out) as rt:
            assert rt.preprocess.mean == (0.1, 0.2, 0.3) and rt.outputs == ["foreground"], backend


def _onnx_iou(model: Path, setup: dict) -> float:
    """The guide IoU of a model file on the val inputs, run here with ONNX Runtime."""
    with get_runtime("onnxruntime", model) as rt:
        logits = rt.infer_padded(setup["xv"])[0][:, 0]
    return float(np.mean([_iou(q, g) for q, g in zip(logits, setup["gt"])]))


@pytest.mark.heavy  # three int8 builds and checks (13 s): `make test-published`
def test_guard_on_a_real_int8_build_refuses_passes_and_forces(setup: dict, tmp_path: Path) -> None:
    """The guard measured on an actual int8 (QDQ) build, against an IoU drop computed here; a limit just below
    the drop refuses it (nothing written), just above passes it, and --force writes it with the verdict kept."""
    common = dict(int8=True, calib=setup["calib"], val=setup["val"], masks=setup["masks"])
    forced = compile_model(setup["onnx"], "onnxruntime", tmp_path / "forced.onnx", max_iou_drop=-1.0, force=True,
                           **common)["accuracy"]
    drop = _onnx_iou(setup["onnx"], setup) - _onnx_iou(tmp_path / "forced.onnx", setup)
    assert forced["iou_drop"] == pytest.approx(drop, abs=1e-6) and forced["forced"] and not forced["passed"]
    assert (tmp_path / "forced.onnx").is_file()
    with pytest.raises(AccuracyDropError, match="nothing was written"):
        compile_model(setup["onnx"], "onnxruntime", tmp_path / "below.onnx", max_iou_drop=drop - 1e-4, **common)
    assert not (tmp_path / "below.onnx").exists() and not (tmp_path / "below.compile.json").exists()
    passed = compile_model(setup["onnx"], "onnxruntime", tmp_path / "above.onnx", max_iou_drop=drop + 1e-4,
                           **common)["accuracy"]
    assert passed["passed"] and not passed["forced"] and passed["iou_drop"] == pytest.approx(drop, abs=1e-6)
