"""unetpp.tune: the seeds post-processing gridded on outputs kept from the product's own predict, the flat choice,
the folds, and the choice written into a checkpoint. Expectations are computed by hand from tiny synthetic maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp import tune
from unetpp.errors import InputError
from unetpp.eval.instance_metrics import instance_score
from unetpp.predict.seeds import SeedParams

# seeds with no border and 1-pixel minima: what is left to choose is the phantom filter
BASE = SeedParams(t_fg=0.5, t_border=0.5, min_seed_area=1, min_area=1, min_mean_fg=0.0)


def _disc(shape: tuple[int, int], cy: int, cx: int, r: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def _kept(scale: float = 1.0) -> tune.Kept:
    """A true nucleus predicted at foreground 0.95 and a phantom (no true nucleus) at 0.7; no border."""
    shape = (48, 48)
    real, phantom = _disc(shape, 12, 12, 8), _disc(shape, 35, 35, 5)
    fg = np.where(real, 0.95, np.where(phantom, 0.7, 0.05)).astype(np.float32)
    maps = np.stack([fg, np.zeros(shape, np.float32)])
    return tune.Kept("synthetic", maps, scale, real.astype(np.int32), "fluorescence", {})


def test_grid_scores_by_hand_and_the_flat_choice_beats_the_sharp_one() -> None:
    scores = tune.grid_scores([_kept()], {"min_mean_fg": [0.0, 0.8, 0.9]}, BASE)
    # 0.0: the phantom stays: 2 predicted, 1 true, 1 match at every IoU -> precision 1/2; count error +100 %
    # 0.8 and 0.9: the phantom (mean 0.7) goes, the true nucleus (0.95) stays -> precision 1, count exact
    np.testing.assert_allclose(scores.ap[:, 0], [0.5, 1.0, 1.0])
    np.testing.assert_array_equal(scores.n_pred[:, 0], [2, 1, 1])
    np.testing.assert_array_equal(scores.fp50[:, 0], [1, 0, 0])
    objective = tune.summary(scores, np.arange(3))["objective"]
    np.testing.assert_allclose(objective, [0.5 - 0.25 * 1.0, 1.0, 1.0])
    # rated with neighbours: (0.25 + 1) / 2, (0.25 + 1 + 1) / 3, (1 + 1) / 2 -> the flat choice is 0.9; the sharp
    # optimum (first best objective) is 0.8, next to the cliff
    choice = tune.choose(scores, k=1)
    assert choice["params"]["min_mean_fg"] == 0.9 and choice["rating"] == pytest.approx(1.0)
    assert choice["sharp"]["params"] == {"min_mean_fg": 0.8}
    assert choice["sharp"]["rating"] == pytest.approx(2.25 / 3)
    assert choice["all"]["count_error"] == 0.0 and choice["all"]["false_positives_iou50"] == 0


def test_areas_are_model_input_pixels_converted_by_the_scale_as_predict_does() -> None:
    # the phantom disc r=5 covers 81 image pixels, the true r=8 one 197; min_area 32 model-input pixels is 32
    # image px at scale 1 (both kept) and 32 / 0.5^2 = 128 image px at scale 0.5 (the phantom removed), as
    # predict.image.postprocess converts it
    params = SeedParams(**{**BASE.to_dict(), "min_area": 32})
    assert int(tune.labels_for(_kept(1.0), params).max()) == 2
    labels = tune.labels_for(_kept(0.5), params)
    assert int(labels.max()) == 1 and labels[12, 12] == 1


def test_neighbour_rating_by_hand() -> None:
    rated = tune.neighbour_rating(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(rated, [[6 / 3, 7 / 3], [8 / 3, 9 / 3]])


def test_folds_hold_each_modality_in_proportion() -> None:
    mods = ["fluorescence"] * 5 + ["stained"] * 3
    folds = tune.stratified_folds([str(i) for i in range(8)], mods, k=2)
    assert [list(np.flatnonzero(f)) for f in folds] == [[0, 2, 4, 5, 7], [1, 3, 6]]


def test_unknown_grid_parameter_is_refused() -> None:
    with pytest.raises(InputError, match="tuning grid"):
        tune.grid_scores([_kept()], {"t_fog": [0.5]})


def test_kept_outputs_reproduce_predicts_own_labels(tmp_path: Path) -> None:
    """The outputs kept from Model.predict_many, post-processed with the model's own setting, are exactly the
    labels predict returned: the grid is scored on what users get."""
    import unetpp

    img = np.full((160, 200, 3), 10, np.uint8)
    truth = np.zeros((160, 200), np.int32)
    for k, (cy, cx, r) in enumerate([(40, 50, 11), (100, 140, 13), (120, 40, 10)], start=1):
        cv2.circle(img, (cx, cy), r, (180, 180, 180), -1)
        cv2.circle(truth, (cx, cy), r, k, -1)
    with unetpp.load(precision="fp32") as model:
        (labels, info), = model.predict_many([img], channel_order="bgr")
        kept, = tune.keep_outputs(model, [img], [truth], ["discs"])
        own = SeedParams.from_dict(model.runtime.metadata["seed_params"])
    assert kept.maps.shape == (2, 160, 200) and kept.scale == info["meta"]["scale"]
    np.testing.assert_array_equal(kept.maps[0], info["prob"])
    np.testing.assert_array_equal(tune.labels_for(kept, own), labels)
    # the grid's staged path scores what the labels predict gives would score, at every point
    grid = {"t_fg": [0.5, 0.7], "min_area": [8, 64], "min_mean_fg": [0.0, 0.9]}
    scores = tune.grid_scores([kept], grid, own)
    for i, p in enumerate(tune.grid_points(grid, own)):
        sc = instance_score(tune.labels_for(kept, p), truth)
        assert (scores.ap[i, 0], scores.n_pred[i, 0], scores.n_true[i, 0]) == (sc.ap, sc.n_pred, sc.n_true)
    with pytest.raises(InputError, match="true labels of discs"):
        tune.keep_outputs(model_stub_for_shape_error(kept), [img], [truth[:10]], ["discs"])


def model_stub_for_shape_error(kept: tune.Kept):
    """Not a runtime stand-in: replays outputs the real model produced above, to reach the size check."""

    class Replay:
        class runtime:  # noqa: N801
            outputs = tune.OUTPUTS

        def predict_many(self, images, channel_order, **options):
            return [(None, {"maps": kept.maps, "meta": {"scale": kept.scale}})]

    return Replay()


def test_write_choice_changes_only_the_seed_params(tmp_path: Path) -> None:
    import torch

    from unetpp.config import ModelConfig
    from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
    from unetpp.model.network import build_model

    torch.manual_seed(0)
    net = build_model(ModelConfig(num_classes=2))
    old = {**BASE.to_dict(), "min_mean_fg": 0.9}
    src = save_checkpoint(tmp_path / "inst.pt", net, meta={"outputs": ["foreground", "border"], "seed_params": old,
                                                             "epoch": 7})
    choice = {"params": {**old, "min_mean_fg": 0.75, "t_border": 0.35}, "all": {"map": 0.6}, "rating": 0.55,
              "fold_spread": {"map": [0.5, 0.7]}}
    out = tune.write_choice(src, choice, tmp_path / "tuned.pt", {"ids": "selection"})
    ck = load_checkpoint(out)
    assert ck.meta["seed_params"] == {**old, "min_mean_fg": 0.75, "t_border": 0.35}
    assert ck.meta["seed_params_previous"] == old and ck.meta["epoch"] == 7
    assert ck.meta["selection"] == {"ids": "selection", "chosen": {"map": 0.6}, "fold_spread": {"map": [0.5, 0.7]},
                                    "rating": 0.55}
    for (k, a), (k2, b) in zip(net.state_dict().items(), ck.model.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    guide = save_checkpoint(tmp_path / "guide.pt", build_model())
    with pytest.raises(InputError, match="instance model"):
        tune.write_choice(guide, choice, tmp_path / "x.pt")


def test_the_current_setting_is_rated_beside_the_choice() -> None:
    scores = tune.grid_scores([_kept()], {"min_mean_fg": [0.0, 0.8, 0.9]}, BASE)
    worse = tune.choose(scores, k=1, current=SeedParams(**{**BASE.to_dict(), "min_mean_fg": 0.0}))
    assert worse["current"]["objective"] == pytest.approx(0.25) and worse["better"] is True
    same = tune.choose(scores, k=1, current=SeedParams(**{**BASE.to_dict(), "min_mean_fg": 0.8}))
    assert same["current"]["rating"] == pytest.approx(2.25 / 3) and same["better"] is False  # 1.0 vs 1.0
    assert "current" not in tune.choose(scores, k=1, current=SeedParams())  # not on the grid


def test_phantoms_on_one_image_do_not_make_up_for_misses_on_another() -> None:
    # image A: one true nucleus and one phantom (min_mean_fg 0: 2 predicted, 1 true); image B: the same maps with a
    # second true nucleus where nothing is predicted (1 predicted at 0.8, 2 true). Pooled, the counts cancel at
    # min_mean_fg 0 (3 predicted, 3 true); per image they miss by 1 + 1 = 2 of 3 true nuclei.
    a = _kept()
    truth_b = a.truth.copy()
    truth_b[_disc(truth_b.shape, 12, 36, 4)] = 2
    b = tune.Kept("b", a.maps.copy(), 1.0, truth_b, "fluorescence", {})
    b.maps[0][_disc(truth_b.shape, 35, 35, 5)] = 0.05  # no phantom on B
    scores = tune.grid_scores([a, b], {"min_mean_fg": [0.0, 0.8]}, BASE)
    np.testing.assert_array_equal(scores.n_pred[:, 0], [2, 1])  # A: nucleus + phantom, then the nucleus alone
    np.testing.assert_array_equal(scores.n_pred[:, 1], [1, 1])
    at0, at8 = tune.summary(scores, 0), tune.summary(scores, 1)
    assert at0["count_error"] == 0.0 and at0["count_miss"] == pytest.approx(2 / 3)
    assert at8["count_error"] == pytest.approx(-1 / 3) and at8["count_miss"] == pytest.approx(1 / 3)
    assert at0["objective"] == pytest.approx(at0["map"] - 0.25 * 2 / 3)
    assert at8["objective"] == pytest.approx(at8["map"] - 0.25 / 3)
