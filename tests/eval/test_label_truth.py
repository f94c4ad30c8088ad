"""`unetpp evaluate --instances` against label-map ground truth (the TNBC layout: labels/<id>_label.png)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from unetpp.cli.main import main
from unetpp.errors import InputError
from unetpp.eval.instance_eval import evaluate_instances
from unetpp.eval.truth import LABEL_MAPS, STAGE1, open_truth


def _truth(root, id_: str) -> np.ndarray:
    """Two nuclei with 16-bit ids (300, 301) across a one-pixel gap, and the picture as a pink JPEG."""
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    lab = np.zeros((40, 50), np.uint16)
    lab[5:15, 5:15] = 300
    lab[5:15, 16:26] = 301
    cv2.imwrite(str(root / "labels" / f"{id_}_label.png"), lab)
    img = np.full((40, 50, 3), (200, 170, 235), np.uint8)
    img[lab > 0] = (150, 60, 90)
    cv2.imwrite(str(root / "images" / f"{id_}.jpg"), img)
    return lab


def test_label_maps_are_scored_as_annotated(tmp_path):
    gt = tmp_path / "tnbc"
    lab = _truth(gt, "02_1")
    _truth(gt, "04_1")
    pred = tmp_path / "pred"
    pred.mkdir()
    cv2.imwrite(str(pred / "02_1_labels.png"), lab)  # perfect
    half = np.where(lab == 300, 7, 0).astype(np.uint16)  # one of the two nuclei found, exactly
    cv2.imwrite(str(pred / "04_1_labels.png"), half)
    assert open_truth(gt).layout == LABEL_MAPS
    r = evaluate_instances(pred, gt)
    rows = {row["id"]: row for row in r["per_image"]}
    assert rows["02_1"]["ap"] == pytest.approx(1.0) and rows["02_1"]["n_true"] == 2
    # TP 1, FP 0, FN 1 at every threshold: 1 / (1 + 0 + 1)
    assert rows["04_1"]["ap"] == pytest.approx(0.5) and rows["04_1"]["n_pred"] == 1
    assert r["map"] == pytest.approx(0.75) and r["gt_layout"] == LABEL_MAPS
    assert rows["02_1"]["modality"] == "stained"


def test_a_missing_label_map_is_named(tmp_path):
    gt = tmp_path / "tnbc"
    lab = _truth(gt, "02_1")
    pred = tmp_path / "pred"
    pred.mkdir()
    cv2.imwrite(str(pred / "02_1_labels.png"), lab)
    cv2.imwrite(str(pred / "06_1_labels.png"), lab)
    with pytest.raises(InputError, match=r"labels/<id>_label.png.*06_1"):
        evaluate_instances(pred, gt)


def test_stage1_train_is_still_the_default_layout(tmp_path):
    (tmp_path / "stage1_train" / "x" / "masks").mkdir(parents=True)
    (tmp_path / "labels").mkdir()  # a labels folder beside stage1_train does not switch the layout
    assert open_truth(tmp_path).layout == STAGE1 and open_truth(tmp_path).root == tmp_path / "stage1_train"


def test_cli_evaluates_against_label_maps(tmp_path, capsys):
    gt = tmp_path / "tnbc"
    lab = _truth(gt, "08_2")
    pred = tmp_path / "pred"
    pred.mkdir()
    cv2.imwrite(str(pred / "08_2_labels.png"), lab)
    out = tmp_path / "report"
    assert main(["evaluate", "--instances", str(pred), "--gt", str(gt), "-o", str(out), "--overlays"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["map"] == pytest.approx(1.0) and summary["n_true"] == 2
    assert (out / "overlays" / "08_2.png").is_file()
    assert "DSB2018 mAP (IoU 0.50-0.95): 1.0000" in capsys.readouterr().out
