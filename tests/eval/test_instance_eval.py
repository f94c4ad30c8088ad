"""Full-resolution evaluation: GT loading from per-nucleus PNGs, predict's label PNGs, `unetpp evaluate --instances`."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from unetpp.cli.main import main
from unetpp.errors import InputError
from unetpp.eval.instance_eval import evaluate_instances
from unetpp.eval.instance_io import load_gt_instances, read_label_image
from unetpp.eval.instance_report import evaluate_full_resolution

E = 1e-5


def _box(shape, r0, r1, c0, c1, value=255) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[r0:r1, c0:c1] = value
    return m


def _sample(root, id_, shape, masks: dict[str, np.ndarray]) -> None:
    (root / id_ / "images").mkdir(parents=True)
    (root / id_ / "masks").mkdir()
    img = np.full((*shape, 4), 40, np.uint8)  # RGBA, as stage1_train
    cv2.imwrite(str(root / id_ / "images" / f"{id_}.png"), img)
    for name, m in masks.items():
        cv2.imwrite(str(root / id_ / "masks" / name), m)


def test_load_gt_instances_file_order_threshold_and_overlap(tmp_path):
    s = (30, 40)
    _sample(tmp_path, "x", s, {
        "b.png": _box(s, 0, 10, 0, 10),
        "a.png": _box(s, 20, 25, 20, 30, value=200),
        "c.png": _box(s, 5, 15, 5, 15),  # overlaps b: later in file order, so it wins
        "d.png": _box(s, 0, 5, 35, 40, value=127),  # not > 127: no pixel, nucleus absent
    })
    labels = load_gt_instances(tmp_path, "x")
    assert labels.dtype == np.uint16 and labels.shape == s
    assert labels[22, 25] == 1 and labels[0, 0] == 2 and labels[7, 7] == 3 and labels[14, 14] == 3
    assert (labels == 2).sum() == 100 - 25 and (labels == 4).sum() == 0
    assert np.count_nonzero(labels) == 50 + 75 + 100


def test_load_gt_instances_empty_missing_and_bad_sizes(tmp_path):
    _sample(tmp_path, "none", (12, 17), {})
    empty = load_gt_instances(tmp_path, "none")
    assert empty.shape == (12, 17) and not empty.any()
    with pytest.raises(InputError, match=r"ground truth of zz: expected a masks folder"):
        load_gt_instances(tmp_path, "zz")
    _sample(tmp_path, "bad", (10, 10), {"a.png": _box((10, 10), 0, 2, 0, 2), "b.png": _box((10, 12), 0, 2, 0, 2)})
    with pytest.raises(InputError, match=r"expected the size of a.png \(10, 10\), found size \(10, 12\)"):
        load_gt_instances(tmp_path, "bad")


def test_read_label_image_keeps_uint16_and_refuses_colour(tmp_path):
    lab = np.zeros((5, 6), np.uint16)
    lab[1, 1] = 300
    cv2.imwrite(str(tmp_path / "l.png"), lab)
    got = read_label_image(tmp_path / "l.png")
    assert got.dtype == np.uint16 and got[1, 1] == 300
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(InputError, match="one channel of uint16 instance ids"):
        read_label_image(tmp_path / "c.png")


@pytest.fixture()
def tree(tmp_path):
    """stage1_train with 3 samples and a predict-style folder.

    p1 (40x50): 2 nuclei predicted exactly (other ids), no _mask.png -> everything 1.
    p2 (30x30): A 10x10, B 10x10; predicted A' = 6 rows of A (IoU 0.6), B exact, plus a 20 px blob only in
      _mask.png -> AP (2 x 1 + 8 x 1/3) / 10; pixel IoU (160+E)/(220+E), Dice (320+E)/(380+E).
    p3 (20x20): no nuclei; one 3x3 predicted -> AP 0, pixel IoU E/(9+E), count error +1.
    """
    gt, pred = tmp_path / "stage1_train", tmp_path / "pred"
    pred.mkdir()
    _sample(gt, "p1", (40, 50), {"m1.png": _box((40, 50), 0, 10, 0, 10), "m2.png": _box((40, 50), 20, 30, 30, 45)})
    p1 = np.zeros((40, 50), np.uint16)
    p1[0:10, 0:10], p1[20:30, 30:45] = 700, 3
    cv2.imwrite(str(pred / "p1_labels.png"), p1)
    s2 = (30, 30)
    _sample(gt, "p2", s2, {"a.png": _box(s2, 0, 10, 0, 10), "b.png": _box(s2, 15, 25, 15, 25)})
    p2 = np.zeros(s2, np.uint16)
    p2[0:6, 0:10], p2[15:25, 15:25] = 1, 2
    cv2.imwrite(str(pred / "p2_labels.png"), p2)
    m2 = ((p2 > 0) * 255).astype(np.uint8)
    m2[26:30, 0:5] = 255
    cv2.imwrite(str(pred / "p2_mask.png"), m2)
    _sample(gt, "p3", (20, 20), {})
    cv2.imwrite(str(pred / "p3_labels.png"), _box((20, 20), 5, 8, 5, 8, value=1).astype(np.uint16))
    return tmp_path, gt, pred


AP2 = (2 + 8 / 3) / 10


def test_evaluate_instances_by_hand(tree):
    tmp, gt, pred = tree
    r = evaluate_instances(pred, tmp)  # the folder holding stage1_train is accepted too
    assert r["n_images"] == 3 and [x["id"] for x in r["per_image"]] == ["p1", "p2", "p3"]
    assert r["map"] == pytest.approx((1 + AP2 + 0) / 3)
    assert r["ap_50"] == pytest.approx(2 / 3) and r["ap_75"] == pytest.approx((1 + 1 / 3) / 3)
    assert r["pixel_iou"] == pytest.approx((1 + (160 + E) / (220 + E) + E / (9 + E)) / 3)
    assert r["dice"] == pytest.approx((1 + (320 + E) / (380 + E) + E / (9 + E)) / 3)
    assert r["count_mae"] == pytest.approx(1 / 3) and (r["n_true"], r["n_pred"]) == (4, 5)
    p2 = r["per_image"][1]
    assert (p2["height"], p2["width"], p2["tp_50"], p2["fp_50"], p2["fn_50"]) == (30, 30, 2, 0, 0)


def test_evaluate_instances_errors(tree):
    tmp, gt, pred = tree
    with pytest.raises(InputError, match=r"2 missing: p4, p5"):
        evaluate_instances(pred, gt, ids=["p1", "p4", "p5"])
    cv2.imwrite(str(pred / "q_labels.png"), np.zeros((3, 3), np.uint16))
    with pytest.raises(InputError, match=r"ground truth in .*1 missing: q"):
        evaluate_instances(pred, gt)
    cv2.imwrite(str(pred / "p1_labels.png"), np.zeros((50, 40), np.uint16))
    with pytest.raises(InputError, match=r"p1_labels.png: expected the image's size \(40, 50\), found size \(50, 40\)"):
        evaluate_instances(pred, gt, ids=["p1"])


def test_cli_instances_writes_report_and_gallery(tree, capsys):
    tmp, gt, pred = tree
    (tmp / "ids.txt").write_text("p2\np1\np3\n")
    out = tmp / "rep"
    assert main(["evaluate", "--instances", str(pred), "--gt", str(gt), "--ids", str(tmp / "ids.txt"),
                 "--overlays", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"DSB2018 mAP (IoU 0.50-0.95): {(1 + AP2) / 3:.4f}"
    assert lines[1] == f"AP@0.50: {2 / 3:.4f}  AP@0.75: {(4 / 3) / 3:.4f}"
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert [r["id"] for r in rows] == ["p1", "p2", "p3"]
    assert rows[1]["ap"] == f"{AP2:.6f}" and rows[2]["count_error"] == "1" and rows[2]["n_true"] == "0"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["map"] == pytest.approx((1 + AP2) / 3) and "per_image" not in summary
    assert summary["ap_per_threshold"]["0.60"] == pytest.approx((1 + 1 / 3) / 3)
    page = (out / "index.html").read_text()
    for id_ in ("p1", "p2", "p3"):
        assert f'src="overlays/{id_}.png"' in page
        assert cv2.imread(str(out / "overlays" / f"{id_}.png")).shape[:2] == cv2.imread(
            str(gt / id_ / "images" / f"{id_}.png")).shape[:2]
    assert not list(out.rglob("*.tmp"))


def test_cli_instances_default_report_dir_without_overlays(tree, capsys):
    tmp, gt, pred = tree
    assert main(["evaluate", "--instances", str(pred), "--gt", str(gt)]) == 0
    assert (pred / "eval" / "per_image.csv").is_file() and not (pred / "eval" / "index.html").exists()


@pytest.mark.parametrize("argv,match", [
    (["--instances", "{pred}", "--gt", "{gt}", "--ids", "{tmp}/ids.txt"], "1 missing: nope"),
    (["--instances", "{pred}", "{pred}", "{gt}"], "found both"),
    (["{pred}", "--gt", "{gt}"], "--gt without --instances"),
    (["--instances", "{tmp}/absent", "--gt", "{gt}"], "nothing at"),
])
def test_cli_instances_bad_arguments_exit_nonzero_without_traceback(tree, capsys, argv, match):
    tmp, gt, pred = tree
    (tmp / "ids.txt").write_text("p1\nnope\n")
    code = main(["evaluate", *[a.format(tmp=tmp, gt=gt, pred=pred) for a in argv]])
    err = capsys.readouterr().err
    assert code != 0 and "unetpp evaluate: error:" in err and match in err and "Traceback" not in err


@pytest.mark.data
def test_real_sample_ground_truth_as_prediction_scores_one(dsb_root, val_ids, tmp_path):
    id_ = val_ids[0]
    labels = load_gt_instances(dsb_root / "stage1_train", id_)
    n_masks = len(list((dsb_root / "stage1_train" / id_ / "masks").glob("*.png")))
    assert labels.max() == n_masks and len(np.unique(labels)) == n_masks + 1  # no overlaps in stage1_train
    cv2.imwrite(str(tmp_path / f"{id_}_labels.png"), labels)
    r = evaluate_full_resolution(tmp_path, dsb_root, ids=[id_], out_dir=tmp_path / "rep", overlays=True)
    assert (r["map"], r["ap_50"], r["ap_75"], r["pixel_iou"], r["count_mae"]) == (1.0, 1.0, 1.0, 1.0, 0.0)
    assert r["n_true"] == n_masks
    assert (tmp_path / "rep" / "overlays" / f"{id_}.png").is_file()
