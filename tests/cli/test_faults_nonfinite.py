"""Fault corpus, non-finite input values (NaN, +-inf) in every command and input format: the item fails alone with
"expected finite numbers, found N NaN and M infinite", the others complete; nothing turns them into quiet numbers.

| command          | format                      | test here                                   |
|------------------|-----------------------------|---------------------------------------------|
| predict          | float TIFF                  | test_faults_predict.test_bad_image_fails_alone |
| predict          | one page of a float stack   | test_predict_nan_page_fails_alone           |
| infer            | .bin, .npy                  | test_infer_nonfinite_input_fails_alone      |
| bench --inputs   | .bin (its cells fail)       | test_bench_fails_the_cells_of_nonfinite_inputs |
| serve            | float TIFF upload           | test_serve_refuses_a_nan_upload             |
| Python API       | array (predict), batch (infer) | test_api_refuses_nonfinite_arrays (and test_faults_inputs) |
| napari widget    | an image layer: Model.predict | the API case (the widget calls Model.predict) |
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from faultkit import listing

from unetpp.core.runfolder import MANIFEST
from unetpp.errors import InputError

FLOAT_IMAGE = np.linspace(0, 1, 40 * 56, dtype=np.float32).reshape(40, 56)


def _with(value: float, at: tuple[int, int] = (3, 4)) -> np.ndarray:
    img = FLOAT_IMAGE.copy()
    img[at] = value
    return img


def test_predict_nan_page_fails_alone(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    stack = np.stack([FLOAT_IMAGE, _with(np.nan), FLOAT_IMAGE])
    tifffile.imwrite(images / "stack.tif", stack, photometric="minisblack")
    r = cli("predict", images, "-o", tmp_path / "o", "--model", onnx_model, "--no-progress", "--threads", "1")
    assert r.rc == 1 and r.says("stack.tif page 2", "expected finite numbers", "1 NaN"), r.out + r.err
    assert "stack_p2_labels.png" not in listing(tmp_path / "o")
    assert {"stack_p1_labels.png", "stack_p3_labels.png", "one_labels.png"} <= set(listing(tmp_path / "o"))


@pytest.mark.parametrize("name, value, says", [
    ("nan.bin", np.nan, "1 NaN and 0 infinite"),
    ("inf.npy", -np.inf, "0 NaN and 1 infinite"),
])
def test_infer_nonfinite_input_fails_alone(name: str, value: float, says: str, cli, bins: Path, onnx_model: Path,
                                           tmp_path: Path) -> None:
    inp = Path(shutil.copytree(bins, tmp_path / "in"))
    x = np.fromfile(inp / "a.bin", dtype="<f4").reshape(3, 96, 96)
    x[1, 5, 6] = value
    if name.endswith(".bin"):
        (inp / name).write_bytes(x.astype("<f4").tobytes())
    else:
        np.save(inp / name, x)
    r = cli("infer", "--model", onnx_model, "--input", inp, "-o", tmp_path / "o", "--output-dirname", "r",
            "--no-progress")
    assert r.rc == 1 and r.says(name, "expected finite numbers", says), r.out + r.err
    assert listing(tmp_path / "o" / "r") == ["a_0.bin", "b_0.bin", "c_0.bin", MANIFEST]


def test_bench_fails_the_cells_of_nonfinite_inputs(cli, bins: Path, onnx_model: Path, tmp_path: Path) -> None:
    inp = Path(shutil.copytree(bins, tmp_path / "in"))
    x = np.fromfile(inp / "b.bin", dtype="<f4")
    x[7] = np.inf
    (inp / "b.bin").write_bytes(x.astype("<f4").tobytes())
    r = cli("bench", "--model", onnx_model, "--inputs", inp, "-o", tmp_path / "bench", "--backends",
            "onnxruntime", "--batch-sizes", "1", "--min-seconds", "0", "--min-iters", "1", "--warmup", "0")
    assert r.rc == 1 and r.says("1 cell(s) failed", "b.bin", "expected finite numbers", "1 infinite"), r.out + r.err


def test_serve_refuses_a_nan_upload(tmp_path: Path) -> None:
    from unetpp.serve.inputs import Limits, RequestError, decode_image

    assert cv2.imwrite(str(tmp_path / "nan.tif"), _with(np.nan))
    with pytest.raises(RequestError) as err:
        decode_image((tmp_path / "nan.tif").read_bytes(), "nan.tif", Limits())
    assert err.value.status == 422 and "finite numbers" in err.value.expected and "1 NaN" in err.value.found


def test_api_refuses_nonfinite_arrays(onnx_model: Path) -> None:
    import unetpp
    from unetpp.model.export import synthetic_nuclei

    with unetpp.load(onnx_model, threads=1) as model:
        with pytest.raises(InputError, match="expected finite numbers, found 0 NaN and 1 infinite"):
            model.predict(_with(np.inf))
        batch = synthetic_nuclei(2, seed=1)
        assert np.isfinite(model.infer(batch)).all()
        batch[1, 0, 2, 2] = np.nan
        with pytest.raises(InputError, match="batch values: expected finite numbers, found 1 NaN"):
            model.infer(batch)
