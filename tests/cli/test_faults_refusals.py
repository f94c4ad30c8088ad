"""Fault corpus, every refusal before any work: options checked against the model, runtime, device and mode before
a run folder or a model is made. Each case: exit 2, one line on stderr, no traceback, the output folder absent.
(Once checked only by the OpenVINO plugin at its first compile, by the socket layer or by argparse's usage block.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import run_sub, write_png

pytest.importorskip("openvino")

PREDICT_CASES = {  # name: (extra argv, what the line says)
    "openvino_device_cuda": (["--backend", "openvino", "--device", "cuda"], ("openvino device", "'CUDA'")),
    "openvino_device_option_gpu": (["--backend", "openvino", "--backend-option", "device=GPU"],
                                   ("openvino device", "'GPU'")),
    "openvino_auto_of_a_missing_device": (["--backend", "openvino", "--backend-option", "device=AUTO:NPU"],
                                          ("openvino device", "AUTO:NPU")),
    "openvino_streams_not_a_number": (["--backend", "openvino", "--backend-option", "streams=banana"],
                                      ("openvino streams", "'banana'")),
    "onnxruntime_device_cuda": (["--device", "cuda"], ("CUDAExecutionProvider",)),
    "int8_of_a_model_file": (["--precision", "int8"], ("--precision int8", "a checkpoint")),
    "depth_of_a_model_file": (["--depth", "2"], ("--depth", "to prune")),
    "threads_zero": (["--threads", "0"], ("--threads", "expected an integer >= 1", "--help")),
    "batch_size_zero": (["--batch-size", "0"], ("--batch-size", "expected an integer >= 1")),
    "unknown_mode": (["--mode", "stretch"], ("--mode", "invalid choice")),
}


def _refused(r, out: Path, says: tuple[str, ...]) -> None:
    err = r.err if hasattr(r, "err") else r.stderr
    rc = r.rc if hasattr(r, "rc") else r.returncode
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(s in lines[0] for s in says), lines[0]
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_refuses_before_any_work(case: str, cli, onnx_model: Path, tmp_path: Path) -> None:
    extra, says = PREDICT_CASES[case]
    image = write_png(tmp_path / "in" / "one.png")
    r = cli("predict", image, "-o", tmp_path / "o", "--model", onnx_model, "--no-progress", *extra)
    _refused(r, tmp_path / "o", says)


def test_predict_refuses_depth_on_a_checkpoint_without_deep_supervision(cli, random_checkpoint: Path,
                                                                        tmp_path: Path) -> None:
    image = write_png(tmp_path / "in" / "one.png")
    r = cli("predict", image, "-o", tmp_path / "o", "--model", random_checkpoint, "--depth", "2", "--no-progress")
    _refused(r, tmp_path / "o", ("--depth 2", "deep supervision"))


@pytest.mark.parametrize("extra, says", [
    (["--backend", "openvino", "--device", "cuda"], ("openvino device",)),
    (["--backend", "openvino", "--backend-option", "streams=0"], ("openvino streams",)),
])
def test_infer_refuses_before_any_work(extra: list, says: tuple, cli, bins: Path, onnx_model: Path,
                                       tmp_path: Path) -> None:
    r = cli("infer", "--model", onnx_model, "--input", bins, "-o", tmp_path / "o", "--output-dirname", "r",
            "--no-progress", *extra)
    _refused(r, tmp_path / "o", says)


@pytest.mark.parametrize("extra, says", [
    (["--port", "70000"], ("--port", "0 to 65535", "70000")),
    (["--port", "-1"], ("--port", "-1")),
    (["--host", "999.1.1.1"], ("--host", "999.1.1.1")),
    (["--port", "8000", "--precision", "fp16"], ("--precision", "invalid choice", "--help")),
])
def test_serve_refuses_before_the_port_opens(extra: list, says: tuple, onnx_model: Path, tmp_path: Path) -> None:
    """In a subprocess: a server that wrongly starts is stopped by the timeout (and the test fails)."""
    r = run_sub("serve", "--model", onnx_model, "--save", tmp_path / "o", *extra, timeout=90)
    _refused(r, tmp_path / "o", says)
