"""evaluate() end to end on temporary files, and the prepare/preprocess/evaluate commands."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from unetpp.cli.main import main
from unetpp.core.runfolder import MANIFEST
from unetpp.errors import InputError
from unetpp.eval.evaluate import evaluate

E = 1e-5
S = 96


def _mask(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((S, S), np.uint8)
    m[rows, cols] = 255
    return m


def _logits(rows: slice, cols: slice) -> np.ndarray:
    x = np.full((S, S), -4.0, np.float32)
    x[rows, cols] = 3.0
    return x


@pytest.fixture()
def case(tmp_path):
    """Three ids. 'b': 100 gt px, prediction 100 px overlapping 50 -> IoU 50/150, Dice 100/200.
    'a': perfect 20 px. 'c': empty gt, empty prediction -> 1."""
    masks, res = tmp_path / "masks" / "0", tmp_path / "res"
    masks.mkdir(parents=True)
    res.mkdir()
    cv2.imwrite(str(masks / "b.png"), _mask(slice(0, 10), slice(0, 10)))
    _logits(slice(5, 15), slice(0, 10)).tofile(res / "b_0.bin")
    cv2.imwrite(str(masks / "a.png"), _mask(slice(40, 44), slice(40, 45)))
    _logits(slice(40, 44), slice(40, 45)).tofile(res / "a_0.bin")
    cv2.imwrite(str(masks / "c.png"), np.zeros((S, S), np.uint8))
    np.save(res / "c_0.npy", np.full((1, S, S), -1.0, np.float32))
    np.zeros(5, np.float32).tofile(res / "a_1.bin")  # a second output: not scored
    return tmp_path, res, masks


def test_evaluate_end_to_end(case):
    tmp, res, masks = case
    r = evaluate(res, masks, csv_path=tmp / "per_image.csv")
    iou_b = (50 + E) / (150 + E)
    assert r["n_images"] == 3
    assert [p["id"] for p in r["per_image"]] == ["a", "b", "c"]
    assert r["iou_guide"] == pytest.approx((1 + iou_b + 1) / 3)
    assert r["dice"] == pytest.approx((1 + (100 + E) / (200 + E) + 1) / 3)
    # upstream: one batch of 3 pooled: tp 20+50, union 20+150
    assert r["iou_upstream"] == pytest.approx((70 + E) / (170 + E))
    rows = list(csv.DictReader((tmp / "per_image.csv").open()))
    assert [list(x.values()) for x in rows][1] == ["b", f"{iou_b:.6f}", f"{(100 + E) / (200 + E):.6f}", "100", "100"]
    assert list(rows[0]) == ["id", "iou_guide", "dice", "pred_pixels", "gt_pixels"]


def test_evaluate_summary_json(case):
    tmp, res, masks = case
    info = {str(i): {"infiles": [f"in/{k}.bin"], "outfiles": [f"elsewhere/res/{k}_0.{ext}"]}
            for i, (k, ext) in enumerate([("a", "bin"), ("b", "bin"), ("c", "npy")])}
    summary = tmp / "res_summary.json"  # ais_bench's later layout: <dirname>_summary.json beside <dirname>/
    summary.write_text(json.dumps({"filesinfo": info}))
    r = evaluate(summary, masks, ids=["b", "a"])
    assert r["n_images"] == 2 and [p["id"] for p in r["per_image"]] == ["a", "b"]
    bad = tmp / "bad.json"
    bad.write_text(json.dumps({"args": {}}))
    with pytest.raises(InputError, match="filesinfo"):
        evaluate(bad, masks)


def test_evaluate_missing_mask_and_missing_result(case):
    tmp, res, masks = case
    (masks / "b.png").unlink()
    with pytest.raises(InputError, match=r"masks in .*none for b"):
        evaluate(res, masks)
    with pytest.raises(InputError, match=r"none for x, y"):
        evaluate(res, masks, ids=["a", "x", "y"])
    (res / "a_0.bin").write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match=r"expected 36864 bytes .*found 100 bytes"):
        evaluate(res, masks, ids=["a"])


def test_cli_evaluate_prints_guide_iou_first(case, capsys):
    tmp, res, masks = case
    assert main(["evaluate", str(res), str(masks), "--csv", str(tmp / "o.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"IoU: {(2 + (50 + E) / (150 + E)) / 3:.4f}"
    assert lines[1].startswith("upstream IoU") and lines[2].startswith("Dice")
    assert (tmp / "o.csv").is_file()


@pytest.mark.parametrize("argv", [
    ["evaluate", "{tmp}/nothing", "{tmp}/masks/0"],
    ["prepare", "{tmp}/empty", "{tmp}/out"],
    ["preprocess", "{tmp}/masks/0", "{tmp}/bins", "--ids", "{tmp}/ids.txt"],
])
def test_cli_bad_input_exits_nonzero_without_traceback(case, capsys, argv):
    tmp, _, _ = case
    (tmp / "empty").mkdir()
    (tmp / "ids.txt").write_text("zz_missing\n")
    code = main([a.format(tmp=tmp) for a in argv])
    err = capsys.readouterr().err
    assert code != 0
    assert f"unetpp {argv[0]}: error:" in err and "Traceback" not in err


def test_cli_prepare_then_preprocess(tmp_path, capsys):
    from unetpp.data.synthetic import make_synthetic_dsb

    root = make_synthetic_dsb(tmp_path / "syn", n=3, seed=4)
    assert main(["prepare", str(root), str(tmp_path / "d96"), "--no-progress"]) == 0
    assert main(["preprocess", str(tmp_path / "d96" / "images"), str(tmp_path / "bin"),
                 "--ids", str(root / "val_ids.txt"), "--no-progress"]) == 0
    (val_id,) = (root / "val_ids.txt").read_text().split()
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == [f"{val_id}.bin", MANIFEST]
    assert (tmp_path / "bin" / f"{val_id}.bin").stat().st_size == 110_592
    assert "prepared 3 new sample(s)" in capsys.readouterr().out
