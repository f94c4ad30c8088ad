"""predict/scale.py `agree`: the instance model's own nuclei correct the first estimate's scale; extra passes
only where the scale is off. Expectations computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unetpp.predict.scale import Pass, agree, corrected_scale


def _never(s: float) -> Pass:
    raise AssertionError(f"no extra pass expected (asked for scale {s})")


def test_pass_measures_its_nuclei_at_the_input() -> None:
    p = Pass.of(0.5, np.array([0, 100, 300, 200]))  # absent ids (0) are not nuclei
    assert (p.n_nuclei, p.median_area, p.input_area) == (3, 200.0, 50.0)


def test_an_agreeing_pass_costs_nothing_more() -> None:
    first = Pass(0.5, 20, 500.0)  # 125 px at the input: within 1.5x of 150
    assert agree(first, _never, 150.0) == (0, [first])
    few = Pass(0.5, 2, 5000.0)  # far off, but two nuclei say nothing
    assert agree(few, _never, 150.0) == (0, [few])


def test_an_off_scale_is_corrected_from_the_models_own_nuclei() -> None:
    first = Pass(0.5, 10, 2400.0)  # 600 px at the input: 4x the target -> sqrt(150 / 2400) = 0.25
    assert corrected_scale(first, 150.0) == pytest.approx(0.25)
    asked = []

    def segment_at(s: float) -> Pass:
        asked.append(s)
        return Pass(s, 12, 2300.0)  # 143.75 px at the input: agrees

    best, passes = agree(first, segment_at, 150.0)
    assert asked == [pytest.approx(0.25)] and best == 1 and len(passes) == 2


def test_at_most_max_passes_and_the_closest_is_kept() -> None:
    # each pass finds nuclei twice as large (in area) as its scale asks for: never agrees
    first = Pass(1.0, 10, 600.0)  # 600 px: 4x

    def segment_at(s: float) -> Pass:
        return Pass(s, 10, 2 * 150.0 / (s * s))  # 300 px at the input: 2x

    best, passes = agree(first, segment_at, 150.0, max_passes=3)
    assert [round(p.scale, 4) for p in passes] == [1.0, 0.5, round(math.sqrt(150 / 1200), 4)]
    assert best == 1  # 300 px (2x) vs 600 (4x); the third is 2x too but later: the first of the closest


def test_predict_corrects_a_wrong_first_estimate_with_one_extra_pass() -> None:
    """The real instance model (fp32) on discs of 452 px: run at a scale 4x too large (nuclei at 16x the target
    area at the input), settle() segments again at sqrt(150 / the area found), keeps that pass and records both."""
    import cv2

    import unetpp
    from unetpp.predict import agreement
    from unetpp.predict.work import model_protocol, work_for

    img = np.full((256, 256, 3), 8, np.uint8)
    discs = [(40, 50), (40, 200), (128, 128), (200, 60), (200, 200)]
    for cy, cx in discs:
        cv2.circle(img, (cx, cy), 12, (180, 180, 180), -1)
    right = math.sqrt(150 / (math.pi * 144))
    with unetpp.load(precision="fp32") as model:
        work = work_for(model.runtime, model.options)
        assert work.rescale_runtime is not None
        opts = work.options
        wrong = 4 * right
        protocol = model_protocol(model.runtime)
        first = agreement.segment_at(work, work.rescale_runtime, img, opts, protocol.post, wrong)
        state = {"meta": {"scale": wrong, "first_pass_median_area": 30.0}, "opts": opts, "img": img,
                 "protocol": protocol}
        kept = agreement.settle(work, state, first)
        _, info = model.predict(img, channel_order="bgr")  # the default: the first estimate agrees, one pass
    passes = state["meta"]["scale_passes"]
    assert len(passes) >= 2 and state["meta"]["scale_kept"] >= 1
    assert passes[0]["scale"] == pytest.approx(wrong, rel=1e-4)
    assert state["meta"]["scale"] == pytest.approx(right, rel=0.25)
    assert len(kept["table"]) == len(discs)
    assert len(info["meta"]["scale_passes"]) == 1 and info["meta"]["scale_kept"] == 0


def test_a_pass_that_finds_nothing_climbs_down_the_ladder_then_corrects() -> None:
    first = Pass(2.0, 0, None)  # nuclei too large to be found
    asked = []

    def segment_at(s: float) -> Pass:
        asked.append(s)
        return Pass(s, 8, 1200.0) if s == 1.0 else Pass(s, 8, 1200.0)  # at 1.0: 1200 px at the input (8x)

    best, passes = agree(first, segment_at, 150.0)
    assert asked == [1.0, pytest.approx(math.sqrt(150 / 1200))] and best == 2


def test_nuclei_that_look_too_small_do_not_scale_up() -> None:
    # 60 px at the input (2.5x below the target): fragments of nuclei far too large look like this; no correction
    # upwards, and at scale 1 or below no fragment check either
    first = Pass(2.0, 40, 15.0)
    assert corrected_scale(first, 150.0) is None
    small = Pass(0.8, 40, 94.0)  # 60 px at the input
    assert agree(small, _never, 150.0) == (0, [small])


def test_an_enlarged_image_showing_pieces_of_nuclei_is_run_smaller() -> None:
    # at 2.0 the model finds 15 px pieces (60 px at the input: looks close enough); the check pass at 1.0 finds
    # nuclei of 600 px (40x larger in the image's pixels: pieces, not nuclei), 600 px at the input too (4x the
    # target) -> one correction to sqrt(150 / 600) = 0.5, which agrees and is kept; the pieces' pass is not
    asked = []

    def segment_at(s: float) -> Pass:
        asked.append(s)
        return Pass(s, 10, 600.0)

    best, passes = agree(Pass(2.0, 40, 15.0), segment_at, 150.0)
    assert asked == [1.0, pytest.approx(0.5)] and best == 2 and len(passes) == 3


def test_whole_nuclei_pass_the_fragment_check_and_the_first_pass_stays() -> None:
    # the check at 1.0 finds nuclei 1.33x larger in the image's pixels (< FRAGMENT_RATIO 2.5): whole nuclei
    first = Pass(2.0, 40, 15.0)
    best, passes = agree(first, lambda s: Pass(s, 30, 20.0), 150.0)
    assert best == 0 and passes == [first, Pass(1.0, 30, 20.0)]
    # a check that finds too few nuclei says nothing either
    best, passes = agree(first, lambda s: Pass(s, 2, 900.0), 150.0)
    assert best == 0 and len(passes) == 2
