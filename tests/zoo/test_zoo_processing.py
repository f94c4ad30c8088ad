"""Our implementation of the spec's pre-processing steps: formulas, refusals, and agreement with bioimageio.core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.model.zoo_processing import apply_step, linear_parameters, make_preprocess

F32 = {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
CHAINS = {
    "scale_range_clip": [{"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 1.0,
                                                          "max_percentile": 99.5}},
                         {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}}],
    "clip_then_zmuv": [{"id": "clip", "kwargs": {"min": 10.0, "max": 100.0}},
                       {"id": "zero_mean_unit_variance", "kwargs": {}}],
    "zmuv_per_channel": [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["batch", "y", "x"]}}],
    "fixed_zmuv_scale_linear": [
        {"id": "fixed_zero_mean_unit_variance", "kwargs": {"axis": "channel", "mean": [10.0, 20.0, 30.0],
                                                           "std": [1.5, 2.0, 0.5]}},
        {"id": "scale_linear", "kwargs": {"axis": "channel", "gain": [1.0, 2.0, 3.0], "offset": [0.5, 0.0, -1.0]}}],
    "percentile_clip_binarize": [{"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": 1.0}},
                                 {"id": "clip", "kwargs": {"min_percentile": 5.0, "max_percentile": 95.0}},
                                 {"id": "binarize", "kwargs": {"threshold": 100.0}}],
    # per-channel binarize is left out: bioimageio.core 0.11 fails on it ("operands could not be broadcast")
}


def _img() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


def test_binarize_per_channel() -> None:
    x = np.stack([np.full((2, 2), v, np.float32) for v in (60.0, 60.0, 200.0)])
    step = {"id": "binarize", "kwargs": {"axis": "channel", "threshold": [50.0, 100.0, 150.0]}}
    assert apply_step(x, step)[:, 0, 0].tolist() == [1.0, 0.0, 1.0]


def test_formulas() -> None:
    img = _img()
    x = img.transpose(2, 0, 1).astype(np.float32)
    zm = make_preprocess([F32, {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}], 3)(img)
    want = (x - x.mean(axis=(1, 2), keepdims=True)) / (x.std(axis=(1, 2), keepdims=True) + 1e-6)
    np.testing.assert_allclose(zm, want, rtol=1e-5, atol=1e-6)
    sr = make_preprocess([F32, {"id": "scale_range", "kwargs": {}}], 3)(img)
    np.testing.assert_allclose(sr, (x - x.min()) / (x.max() - x.min() + 1e-6), rtol=1e-6)
    assert sr.dtype == np.float32 and sr.shape == (3, 12, 10)


@pytest.mark.parametrize("step,match", [
    ({"id": "stardist_postprocessing"}, r"expected ensure_dtype / scale_linear.*found 'stardist_postprocessing'"),
    ({"id": "scale_linear", "kwargs": {"axis": "y", "gain": [1.0, 2.0, 3.0]}},
     r"scale_linear axis: expected 'channel'"),
    ({"id": "scale_linear", "kwargs": {"axis": "channel", "gain": [1.0, 2.0]}},
     r"expected 3 \(one per channel\), found 2"),
    ({"id": "zero_mean_unit_variance", "kwargs": {"axes": ["z"]}}, r"axes: expected names among batch, channel, y, x"),
])
def test_refusals(step: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        apply_step(np.zeros((3, 4, 4), np.float32), step)


def test_image_shape_checked() -> None:
    with pytest.raises(InputError, match=r"image: expected an \(H, W, 3\) array, found shape \(4, 4\)"):
        make_preprocess([F32], 3)(np.zeros((4, 4), np.uint8))


def test_linear_parameters() -> None:
    p = linear_parameters(CHAINS["fixed_zmuv_scale_linear"], 3)
    x = _img().transpose(2, 0, 1).astype(np.float64)
    ours = make_preprocess([F32, *CHAINS["fixed_zmuv_scale_linear"]], 3)(_img())
    g, o = np.asarray(p["gain"])[:, None, None], np.asarray(p["offset"])[:, None, None]
    np.testing.assert_allclose(ours, x * g + o, rtol=1e-5, atol=1e-5)
    m, s = np.asarray(p["mean"])[:, None, None], np.asarray(p["std"])[:, None, None]
    np.testing.assert_allclose((x - m) / s, x * g + o, rtol=1e-9, atol=1e-9)
    assert linear_parameters(CHAINS["clip_then_zmuv"], 3) is None


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_same_as_bioimageio_core(chain: str, identity_builder: Callable[..., Path], tmp_path: Path) -> None:
    core = pytest.importorskip("bioimageio.core", reason="bioimageio.core is not installed (pip install -e '.[zoo]')")
    x = _img().transpose(2, 0, 1)[None].copy()
    pkg = identity_builder(tmp_path, chain, (F32, *CHAINS[chain], F32), x)
    summary = core.test_model(pkg, devices=["cpu"])
    rep = [d for d in summary.details if d.name.startswith("Reproduce test outputs")]
    assert rep and all(d.status == "passed" for d in rep), [e.msg for d in rep for e in d.errors]
