"""A model's predict protocol (predict/protocol.py): resolved from its metadata, options that act on the parameter
that decides for that model, and the values applied echoed where users see them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unetpp.predict.image import PredictOptions
from unetpp.predict.protocol import DistancePost, FirstPassLabelling, PredictProtocol, SeedPost, applied_line
from unetpp.predict.seeds import SeedParams

SEEDS = {"t_fg": 0.6, "t_border": 0.45, "min_seed_area": 4, "min_area": 8, "flood": "border", "keep_unseeded": True,
         "fill_holes": True, "min_mean_fg": 0.85, "t_grow": None}
INSTANCE_META = {"scale": {"rule": "nuclei@150", "target_area": 150.0}, "seed_params": SEEDS, "depth": 3}
VAL_IMAGE = "610f32e2d9d270d740aec501dcf0c89595e4e623468ad43272adab90520a8f96"  # 256x320, ~58 nuclei, val id


def instance() -> PredictProtocol:
    return PredictProtocol.of_model(INSTANCE_META, ["foreground", "border"])


def test_instance_model_protocol_comes_from_its_metadata() -> None:
    p = instance()
    assert (p.mode, p.scale_rule, p.first_pass, p.free_windows, p.depth) == ("tile", "nuclei@150", "guide", True, 3)
    assert p.post == SeedPost(SeedParams(**SEEDS))
    assert p.apply(PredictOptions()) == p  # no option given: the model's own, unchanged


def test_guide_model_protocol_is_the_resize_protocol_with_a_distance_split() -> None:
    p = PredictProtocol.of_model({}, ["foreground"])
    assert (p.mode, p.scale_rule, p.first_pass, p.free_windows, p.depth) == ("resize", "fit", None, False, None)
    assert p.post == DistancePost(0.5, 10, True)
    tiled = p.apply(PredictOptions(mode="tile", scale="nuclei", threshold=0.7, min_area=25))
    assert (tiled.mode, tiled.scale_rule, tiled.first_pass) == ("tile", "nuclei", "self")
    assert tiled.post == DistancePost(0.7, 25, True)
    # a model that measures itself labels its first pass as its own post-processing does
    assert tiled.first_pass_labelling == FirstPassLabelling(0.7, 25, True)


def test_threshold_and_min_area_act_on_the_seeds_not_on_the_first_pass() -> None:
    applied = instance().apply(PredictOptions(threshold=0.8, min_area=200))
    assert applied.post.params.t_fg == 0.8
    assert applied.post.params.t_border == 0.45  # the rest stays the model's own
    assert applied.post.min_area_px == 200
    assert applied.first_pass_labelling == FirstPassLabelling(0.5, 10, True)  # the guide's own measurement
    assert applied.scale_rule == "nuclei@150"


def test_seed_areas_follow_the_scale_and_an_explicit_min_area_is_in_image_pixels() -> None:
    own = instance().post
    at_half = own.image_params(0.5)  # the model saw the image at half size: its areas are 4x in the image
    assert (at_half.min_area, at_half.min_seed_area) == (32, 16)
    given = instance().apply(PredictOptions(min_area=200)).post.image_params(0.5)
    assert (given.min_area, given.min_seed_area) == (200, 16)


def test_no_split_on_the_instance_model_is_connected_components() -> None:
    applied = instance().apply(PredictOptions(split=False, threshold=0.7))
    assert applied.post == DistancePost(0.7, 10, False)
    assert applied.to_dict()["postprocess"]["kind"] == "components"


def test_applied_values_are_echoed_with_the_depth() -> None:
    d = instance().apply(PredictOptions(threshold=0.8, min_area=200)).to_dict()
    assert d["depth"] == 3 and d["postprocess"]["t_fg"] == 0.8 and d["postprocess"]["min_area"] == 200
    assert d["postprocess"]["min_area_in"] == "image pixels"
    assert json.loads(json.dumps(d)) == d
    assert applied_line(d) == "tile nuclei@150; seeds t_fg 0.8, min area 200 image px, depth 3"


@pytest.mark.parametrize("bad", [{"threshold": 1.0}, {"threshold": 0.0}, {"min_area": -1}, {"min_area": 2.5}])
def test_out_of_range_values_are_refused(bad) -> None:
    from unetpp.errors import InputError

    with pytest.raises(InputError, match="expected"):
        PredictOptions(**bad)


def _val_image(dsb_root):
    img = cv2.imread(str(dsb_root / "stage1_train" / VAL_IMAGE / "images" / f"{VAL_IMAGE}.png"))
    assert img is not None
    return img


@pytest.mark.slow
def test_threshold_is_the_seeds_foreground_threshold_and_keeps_the_scale(shipped_instance_runtime,
                                                                         dsb_root) -> None:
    """--threshold acts on the seeds' t_fg (0.6 for the shipped model): the nuclei are the pixels over it, and the
    scale stays the model's own (before, the option only moved the first pass's estimate: one image went from 82
    to 142 nuclei while its nuclei kept the checkpoint's t_fg)."""
    from unetpp.predict.single import predict_image

    img = _val_image(dsb_root)
    own = predict_image(img, shipped_instance_runtime, PredictOptions())
    high = predict_image(img, shipped_instance_runtime, PredictOptions(threshold=0.8))
    assert high["meta"]["scale"] == own["meta"]["scale"]
    assert high["protocol"].post.params.t_fg == 0.8 and own["protocol"].post.params.t_fg == SEEDS["t_fg"]
    # the nuclei are the pixels whose foreground probability passes the threshold applied (holes filled aside)
    over = lambda r, t: float((r["prob"][r["mask"]] > t).mean())  # noqa: E731
    assert over(high, 0.8) > 0.99
    assert over(own, 0.6) > 0.99 and over(own, 0.8) < 0.95
    assert 0 < high["mask"].sum() < own["mask"].sum()


@pytest.mark.slow
def test_min_area_and_the_summary_echo_on_the_product_path(shipped_instance_runtime, dsb_root, tmp_path) -> None:
    """`unetpp predict --min-area 200` leaves no nucleus under 200 px of the image (before: 18 were left), and
    predict_summary.json records the values applied, the depth included."""
    from unetpp.predict.folder import predict_paths

    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), _val_image(dsb_root))
    own = predict_paths([src], tmp_path / "own", shipped_instance_runtime, PredictOptions(), progress=False)
    areas_own = np.loadtxt(tmp_path / "own" / "a_nuclei.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1]
    assert (areas_own < 200).any()  # the default keeps small nuclei, so the option has something to remove
    summary = predict_paths([src], tmp_path / "big", shipped_instance_runtime,
                            PredictOptions(min_area=200, threshold=0.7), progress=False)
    areas = np.loadtxt(tmp_path / "big" / "a_nuclei.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1]
    assert areas.size and areas.min() >= 200
    labels = cv2.imread(str(tmp_path / "big" / "a_labels.png"), cv2.IMREAD_UNCHANGED)
    assert np.bincount(labels.ravel())[1:].min() >= 200
    applied = json.loads((tmp_path / "big" / "predict_summary.json").read_text())["settings"]["protocol"]
    assert applied == summary["settings"]["protocol"]
    post = applied["postprocess"]
    assert (post["kind"], post["t_fg"], post["min_area"], post["min_area_in"]) == ("seeds", 0.7, 200, "image pixels")
    assert applied["depth"] == 3  # the shipped model's default depth, which is what ran
    assert own["settings"]["protocol"]["postprocess"]["t_fg"] == SEEDS["t_fg"]


@pytest.mark.parametrize("idle", [{"scale": 0.5}, {"window": 96}])
def test_an_option_that_would_do_nothing_is_refused(idle) -> None:
    from unetpp.errors import InputError

    with pytest.raises(InputError, match="with --mode resize"):
        instance().apply(PredictOptions(mode="resize", **idle))
    guide = PredictProtocol.of_model({}, ["foreground"])
    with pytest.raises(InputError, match="give --mode tile"):
        guide.apply(PredictOptions(**idle))  # the guide model's own mode is resize
    assert guide.apply(PredictOptions(mode="tile", **idle)).mode == "tile"
