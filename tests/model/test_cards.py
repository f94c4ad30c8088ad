"""Each shipped model is held to its published figures: its card (weights/cards.json) names its checkpoint by
SHA-256, and the `published` tests measure the figure again on the real data (`make test-published`, minutes).

The guide model's figure is fixed by the reference (guide IoU 0.8433 on the 134 val ids); the instance model's is
read from its card, so that a retrained model is held to the figure written for it, never to an older one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unetpp.atomic import file_sha256
from unetpp.model.cards import card_for, shipped_cards
from unetpp.model.resolve import SHIPPED_MODELS

GUIDE_IOU = 0.8433  # the reference's figure for the shipped guide checkpoint (README, Results)


def test_every_shipped_model_has_the_card_of_its_own_file() -> None:
    cards = shipped_cards()
    assert set(cards) == set(SHIPPED_MODELS)
    for name, path in SHIPPED_MODELS.items():
        sha = file_sha256(path)
        assert cards[name]["file"] == path.name
        assert cards[name]["sha256"] == sha, (
            f"the shipped {name} model ({path.name}, sha256 {sha[:12]}) is not the file its card describes: measure "
            "it (bench/accuracy/instance_val.py) and write its figures into src/unetpp/weights/cards.json")
        assert card_for(path) == (name, cards[name])
    assert cards["guide"]["figures"]["guide_iou_96px"] == GUIDE_IOU


def test_a_file_that_is_no_shipped_model_has_no_card(random_checkpoint: Path) -> None:
    assert card_for(random_checkpoint) is None


# The guide model's published IoU is held by tests/data/test_splits.py: `unetpp run` on a plain download of
# stage1_train (the guide's split from the package), the one run of the main job on the real data.


@pytest.mark.slow
@pytest.mark.published
def test_the_instance_model_scores_the_map_on_its_card(dsb_root: Path, tmp_path: Path) -> None:
    """`unetpp predict` with its defaults on the 134 val ids, then `evaluate --instances`: the mAP and pixel IoU
    written on the shipped instance model's card (within 0.001: other CPUs round a few pixels otherwise)."""
    from unetpp.cli.main import main

    name, card = card_for(SHIPPED_MODELS["instance"]) or (None, None)
    assert card is not None, "the shipped instance model has no card: see test_every_shipped_model_has_..."
    want = card["figures"]["full_resolution_tile_auto"]
    out = tmp_path / "pred"
    assert main(["predict", str(dsb_root / "stage1_train"), "--ids", str(dsb_root / "val_ids.txt"), "-o", str(out),
                 "--no-progress", "--threads", str(os.cpu_count() or 1)]) == 0
    assert main(["evaluate", "--instances", str(out), "--gt", str(dsb_root), "--ids",
                 str(dsb_root / "val_ids.txt")]) == 0
    got = json.loads((out / "eval" / "summary.json").read_text())
    assert got["n_images"] == 134
    assert abs(got["map"] - want["dsb2018_map"]) <= 0.001, (got["map"], want["dsb2018_map"])
    assert abs(got["pixel_iou"] - want["pixel_iou"]) <= 0.001, (got["pixel_iou"], want["pixel_iou"])
