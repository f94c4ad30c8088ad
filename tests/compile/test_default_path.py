"""The default path in CI: exactly what a user gets from `unetpp predict` (no runtime override, an empty private
model cache, the shipped instance model with its shipped int8 build) on the guide's 134 val ids, then
`unetpp evaluate --instances`, held to the default runtime's figure on the model's card (`make test-published`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from defaultkit import default_env, run_unetpp

from unetpp.compile import fast
from unetpp.model.cards import card_for
from unetpp.model.resolve import SHIPPED_MODELS


@pytest.mark.slow
@pytest.mark.published
def test_the_default_path_scores_the_default_runtimes_map_on_the_card(dsb_root: Path, tmp_path: Path) -> None:
    if not fast.openvino_available():
        pytest.skip("the default runtime is OpenVINO int8: pip install 'unetpp[openvino]'")
    _, card = card_for(SHIPPED_MODELS["instance"]) or (None, None)
    assert card is not None, "the shipped instance model has no card: see tests/model/test_cards.py"
    want = card["figures"]["default_runtime"]
    cache, out = tmp_path / "empty-cache", tmp_path / "pred"
    env = default_env(cache)
    r = run_unetpp(["predict", str(dsb_root / "stage1_train"), "--ids", str(dsb_root / "val_ids.txt"), "-o", str(out),
                    "--no-progress"], env, timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "building" not in r.stderr, "the shipped model's int8 build was made on first use: run `make builds`"
    ran = json.loads((out / "predict_summary.json").read_text())["settings"]["runtime"]["selection"]
    assert {k: ran[k] for k in ("runtime", "precision", "verified", "depth")} == \
        {"runtime": "openvino", "precision": "int8", "verified": True, "depth": want["depth"]}
    assert ran["check"]["passed"] is True and ran["check"]["rule"] == fast.check_rule()
    r = run_unetpp(["evaluate", "--instances", str(out), "--gt", str(dsb_root), "--ids",
                    str(dsb_root / "val_ids.txt")], env)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads((out / "eval" / "summary.json").read_text())
    assert got["n_images"] == 134
    tol = want["tolerance"]
    assert abs(got["map"] - want["dsb2018_map"]) <= tol, (
        f"mAP {got['map']:.4f} against the card's {want['dsb2018_map']} +/- {tol}: if the model or its build changed "
        "on purpose, measure it again and write the figure on the card (src/unetpp/weights/cards.json)")
    assert abs(got["pixel_iou"] - want["pixel_iou"]) <= tol, (got["pixel_iou"], want["pixel_iou"])
