"""Per-image windows (predict.tiling.plan_windows) for a model with free height/width: the pixels they compute
(hand-counted), their seams against a single whole-image pass of the shipped model (PyTorch reference) on a real
image, and a fixed-96 model still running in 96x96 windows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.predict.image import PredictOptions
from unetpp.predict.tiling import TileBlender, pad_to, plan_windows, round_up, stitched_axis


def test_pixel_ratio_of_96_windows_is_hand_counted() -> None:
    # 100x100 in 96x96 windows at 25 %: stride 72, so starts [0, 4] on each axis: 4 windows of 9,216 pixels
    plan = plan_windows(100, 100, tile=96, overlap=0.25)
    assert (plan.ys, plan.xs, plan.blend) == ((0, 4), (0, 4), "hann")
    assert plan.computed_pixels == 4 * 96 * 96 == 36_864
    assert plan.pixel_ratio == pytest.approx(36_864 / 10_000)
    # a 50x70 image is padded to one 96x96 window
    assert plan_windows(50, 70).pixel_ratio == pytest.approx(9216 / 3500)


def test_whole_image_window_is_padded_to_multiples_of_16() -> None:
    plan = plan_windows(100, 100, step=16)
    assert (plan.height, plan.width, plan.win_h, plan.win_w, plan.n_windows) == (112, 112, 112, 112, 1)
    assert plan.pixel_ratio == pytest.approx(112 * 112 / 10_000)
    exact = plan_windows(256, 320, step=16)
    assert exact.pixel_ratio == 1.0 and exact.n_windows == 1


def test_large_image_windows_are_hand_counted() -> None:
    # 1100x1000 pads to 1104x1008 = 1,112,832 px > 1 Mpx: stitched windows of <= 512 px, overlap >= 128 px.
    # rows: n = ceil((1104 - 128) / (512 - 128)) = 3, window = ceil((1104 + 2*128) / 3) = 454 -> 464 (x16),
    # starts 16 * round(i * ((1104 - 464) / 16) / 2) = 0, 320, 640; columns: n = ceil(880 / 384) = 3,
    # window = ceil((1008 + 256) / 3) = 422 -> 432, starts 16 * round(i * 36 / 2) = 0, 288, 576
    plan = plan_windows(1100, 1000, step=16, margin=64)
    assert (plan.win_h, plan.ys, plan.win_w, plan.xs) == (464, (0, 320, 640), 432, (0, 288, 576))
    assert plan.computed_pixels == 9 * 464 * 432
    assert plan.pixel_ratio == pytest.approx(9 * 464 * 432 / 1_100_000)


@pytest.mark.parametrize("length, largest", [(528, 256), (1040, 512), (2000, 512), (4096, 256)])
def test_stitched_windows_cover_with_the_margin_on_the_pooling_grid(length: int, largest: int) -> None:
    win, starts = stitched_axis(length, largest, 64, 16)
    assert win <= largest and win % 16 == 0 and starts[0] == 0 and starts[-1] + win == length
    assert all(s % 16 == 0 for s in starts)
    assert all(starts[i] + win - starts[i + 1] >= 128 for i in range(len(starts) - 1))


def test_stitching_takes_each_pixel_from_a_window_with_the_margin_around_it() -> None:
    plan = plan_windows(400, 560, step=16, window=256, margin=64)
    blender = TileBlender.from_plan(plan)
    maps = np.stack([np.full((plan.win_h, plan.win_w), i, np.float32) for i in range(plan.n_windows)])
    blender.add(0, maps)  # each window's map says which window it is
    got = blender.result(400, 560).astype(int)
    ys, xs = np.mgrid[0:400, 0:560]
    for i in range(plan.n_windows):
        y, x = plan.corner(i)
        sel = got == i
        assert sel.any()
        py, px = ys[sel], xs[sel]
        assert py.min() >= y and py.max() < y + plan.win_h and px.min() >= x and px.max() < x + plan.win_w
        # >= 64 px of the window's own pixels between a pixel and any inner edge (image edges are not inner)
        if y > 0:
            assert (py - y).min() >= 64
        if y + plan.win_h < plan.height:
            assert (y + plan.win_h - 1 - py).min() >= 63
        if x > 0:
            assert (px - x).min() >= 64
        if x + plan.win_w < plan.width:
            assert (x + plan.win_w - 1 - px).min() >= 63


def test_window_option_is_checked() -> None:
    with pytest.raises(InputError, match="--window"):
        PredictOptions(window=8)
    with pytest.raises(InputError, match="multiple of 16"):
        plan_windows(300, 300, step=16, window=200)
    # a window smaller than two default margins keeps what margin it can: 96 px -> 32 px each side
    small = plan_windows(300, 300, tile=128, step=16, window=96)  # a model of 128 px, 96 px windows
    assert small.win_h == 96 and all(b - a <= 96 - 64 for a, b in zip(small.ys, small.ys[1:]))


def _real_image(dsb_root, val_ids, size: tuple[int, int]) -> np.ndarray:
    i = val_ids[3]  # a 603x1272 bright-field field with many nuclei
    img = cv2.imread(str(dsb_root / "stage1_train" / i / "images" / f"{i}.png"), cv2.IMREAD_COLOR)
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def test_stitched_seams_stay_close_to_a_whole_image_pass(shipped_instance_runtime, dsb_root, val_ids) -> None:
    """256 px windows over a real 400x560 image against one pass over the whole (padded) image, both through the
    PyTorch reference model: the seams change probabilities by little and almost no decision."""
    from unetpp.eval.metrics import sigmoid
    from unetpp.predict.work import PredictItem, PredictWork, work_kwargs

    rt = shipped_instance_runtime
    img = _real_image(dsb_root, val_ids, (400, 560))
    opts = PredictOptions(scale=1.0, window=256)
    kw = {**work_kwargs(rt, opts), "first_pass_runtime": None}
    work = PredictWork(opts, **kw)
    state, chunks = work.prepare(PredictItem("x", image=img))
    assert state["meta"]["n_tiles"] > 1 and state["meta"]["window"][0] <= 256
    start = 0
    for chunk in chunks:
        y, _ = rt.infer_padded(chunk)
        work.accept(state, start, y)
        start += chunk.shape[0]
    windows = state["blender"].result(400, 560)
    padded = pad_to(img, round_up(400, 16), round_up(560, 16))
    whole = sigmoid(rt.infer(work.normalizer(padded)[None]))[0][:, :400, :560]
    diff = np.abs(windows - whole)
    assert diff.max() < 0.25
    assert np.percentile(diff, 99.9) < 0.02
    flips = np.count_nonzero((windows[0] >= 0.5) != (whole[0] >= 0.5))
    assert flips / whole[0].size < 1e-3


def test_default_plan_runs_a_small_image_as_one_window(shipped_instance_runtime) -> None:
    from unetpp.predict.work import work_for

    work = work_for(shipped_instance_runtime, PredictOptions())
    plan = work.plan(300, 420)
    assert (plan.n_windows, plan.win_h, plan.win_w) == (1, 304, 432)
    own = shipped_instance_runtime.input_shape[-1]  # the model's own (training) size
    assert work.plan(300, 420, PredictOptions(window=own)).blend == "hann"  # the fixed-size protocol on demand


def test_fixed_96_model_still_runs_in_96_windows(onnx_model, tmp_path) -> None:
    """A model file that takes 96x96 only (a fixed-size export) runs in 96x96 windows; a larger window is refused."""
    from unetpp.predict.single import predict_image, predict_one
    from unetpp.runtimes import get_runtime

    rt = get_runtime("onnxruntime", onnx_model, threads=1).activate()
    assert rt.size_step is None
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (150, 230, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    rec = predict_one(tmp_path / "img.png", tmp_path / "out", rt, PredictOptions(mode="tile", scale=1.0))
    # 150x230 at 25 %: rows [0, 54], columns [0, 67, 134]: six 96x96 windows
    assert rec["window"] == [96, 96] and rec["n_tiles"] == 6 and rec["computed_px"] == 6 * 96 * 96
    assert rec["output_px"] == 150 * 230
    with pytest.raises(InputError, match="96x96 inputs only"):
        predict_image(img, rt, PredictOptions(mode="tile", scale=1.0, window=256))


def test_tta_runs_on_a_non_square_whole_image_window(shipped_instance_runtime) -> None:
    """--tta on a free-size model: the quarter turns of a non-square window have the other shape; they run one by
    one and fold back onto the image."""
    from unetpp.predict.single import predict_image

    rng = np.random.default_rng(1)
    img = np.full((100, 150, 3), 10, np.uint8)
    for _ in range(6):
        cv2.circle(img, (int(rng.integers(20, 130)), int(rng.integers(20, 80))), 9, (200, 190, 180), -1)
    res = predict_image(img, shipped_instance_runtime, PredictOptions(mode="tile", scale=1.0, tta=True))
    plain = predict_image(img, shipped_instance_runtime, PredictOptions(mode="tile", scale=1.0))
    assert res["prob"].shape == plain["prob"].shape == (100, 150)
    assert np.mean((res["prob"] >= 0.5) == (plain["prob"] >= 0.5)) > 0.97
