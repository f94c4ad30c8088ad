"""Prediction with the real shipped model: seams of the tiled mode, `unetpp predict` end to end, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tile_harness import blend_tiles, tile_probs

from unetpp.cli.main import main
from unetpp.errors import InputError
from unetpp.predict.image import PredictOptions
from unetpp.predict.single import predict_image, predict_one
from unetpp.runtimes import resolve_model

VAL_ID = "610f32e2d9d270d740aec501dcf0c89595e4e623468ad43272adab90520a8f96"  # a 256x320 val image
DISCS = [(40, 50, 11), (40, 200, 14), (120, 120, 12), (190, 60, 10), (200, 210, 13)]  # (cy, cx, r)


def test_tiled_probability_has_no_seams(shipped_runtime):
    """A uniform black image: every window sees the same input, so the model's own border fall-off inside each
    window (p ~0.12 in the middle, ~0.04 at the edges) is what a naive tiling shows as seams. Blended, the map
    must be smooth where windows meet and stay near the single-window centre value."""
    img = np.zeros((192, 192, 3), np.uint8)
    single = tile_probs(shipped_runtime, img[None, :96, :96])[0]
    centre = float(single[40:56, 40:56].mean())
    # 144 px, overlap 0.5: 2x2 windows at 0 and 48; naive: 192 px, 2x2 windows at 0 and 96, uniform weights
    def fn(t: np.ndarray) -> np.ndarray:
        return tile_probs(shipped_runtime, t)

    blended = blend_tiles(img[:144, :144], fn, overlap=0.5)
    naive = blend_tiles(img, fn, overlap=0.0, floor=1.0)
    assert blended.shape == (144, 144) and naive.shape == (192, 192)

    def max_step(p: np.ndarray) -> float:  # largest jump between neighbouring pixels away from the image border
        inner = np.s_[16:-16, 16:-16]
        return max(np.abs(np.diff(p, axis=0))[inner].max(), np.abs(np.diff(p, axis=1))[inner].max())

    assert max_step(naive) > 0.02  # the seams exist (the test can see them) ...
    assert max_step(blended) < 0.25 * max_step(naive)  # ... and blending removes them
    assert np.abs(blended[24:-24, 24:-24] - centre).max() < 0.25 * centre


def test_resolve_model_choices(tmp_path: Path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    assert resolve_model(onnx, None) == ("onnxruntime", onnx)
    with pytest.raises(InputError, match="backend torch"):
        resolve_model(onnx, "torch")
    with pytest.raises(InputError, match="nothing at"):
        resolve_model(tmp_path / "none.pt", None)
    backend, path = resolve_model(None, "torch")
    assert backend == "torch" and path.suffix == ".pt"


def test_predict_one_on_hand_built_discs(shipped_runtime, tmp_path: Path):
    """Bright discs on black (fluorescence-like): the real model finds each one, at the right place and size."""
    img = np.full((256, 256, 3), 8, np.uint8)
    for cy, cx, r in DISCS:
        cv2.circle(img, (cx, cy), r, (190, 190, 190), -1)
    cv2.imwrite(str(tmp_path / "discs.png"), img[:, :, 0])  # a grey PNG
    rec = predict_one(tmp_path / "discs.png", tmp_path / "out", shipped_runtime, PredictOptions(mode="resize"))
    assert rec["nuclei"] == len(DISCS) and (rec["height"], rec["width"], rec["channels"]) == (256, 256, 1)
    rows = [r.split(",") for r in (tmp_path / "out" / "discs_nuclei.csv").read_text().split()[1:]]
    for row in rows:
        cy, cx, area = float(row[2]), float(row[3]), int(row[1])
        cy0, cx0, r = min(DISCS, key=lambda d: (d[0] - cy) ** 2 + (d[1] - cx) ** 2)
        assert abs(cy - cy0) < 2 and abs(cx - cx0) < 2
        assert 0.6 * np.pi * r * r < area < 1.6 * np.pi * r * r


def _read(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    return arr


@pytest.mark.data
def test_cli_predict_val_image_end_to_end(dsb_root: Path, tmp_path: Path, capsys, instance_size):
    sample = dsb_root / "stage1_train" / VAL_ID
    gt = np.any([_read(p) > 127 for p in (sample / "masks").glob("*.png")], axis=0)
    ids = tmp_path / "ids.txt"
    ids.write_text(VAL_ID + "\n")
    for mode, extra in (("resize", []), ("tile", ["--scale", "fit", "--overlap", "0.5"])):
        out = tmp_path / mode
        argv = ["predict", str(dsb_root / "stage1_train"), "--ids", str(ids), "-o", str(out), "--mode", mode,
                "--backend", "torch", "--threads", "2", "--save-prob", "--no-progress", *extra]
        assert main(argv) == 0
        mask, labels, prob = (_read(out / f"{VAL_ID}_{k}.png") for k in ("mask", "labels", "prob"))
        assert mask.shape == labels.shape == prob.shape == gt.shape == (256, 320)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert labels.dtype == np.uint16 and prob.dtype == np.uint16
        assert ((labels > 0) <= (mask > 0)).all()
        pred = mask > 0
        assert (pred & gt).sum() / (pred | gt).sum() > 0.7, mode  # a real segmentation of this image
        rows = (out / f"{VAL_ID}_nuclei.csv").read_text().splitlines()
        assert rows[0] == "label,area_px,centroid_y,centroid_x,bbox_y0,bbox_x0,bbox_y1,bbox_x1"
        assert len(rows) - 1 == labels.max() > 10
        counts = (out / "counts.csv").read_text().splitlines()
        assert counts[0] == "image,height,width,mode,nuclei,scale"
        assert counts[1].split(",")[:5] == [VAL_ID, "256", "320", mode, str(labels.max())]
        summary = json.loads((out / "predict_summary.json").read_text())
        assert summary["n_predicted"] == 1 and summary["n_failed"] == 0
    assert summary["images"][0]["scale"] == pytest.approx(instance_size / 256)  # resize: the model's size
    # a rerun with the same settings skips the complete image and rewrites nothing
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.startswith(VAL_ID)}
    assert main(argv) == 0
    assert json.loads((out / "predict_summary.json").read_text())["n_skipped"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.startswith(VAL_ID)} == before
    assert "skipped 1 already complete" in capsys.readouterr().out


def test_cli_mixed_folder_reports_each_bad_file_and_goes_on(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    img = np.full((64, 80, 3), 8, np.uint8)
    cv2.circle(img, (40, 32), 12, (200, 200, 200), -1)
    cv2.imwrite(str(src / "good.png"), img)
    data = (src / "good.png").read_bytes()
    (src / "trunc.png").write_bytes(data[: len(data) // 2])
    (src / "empty.tif").write_bytes(b"")
    (src / "notes.txt").write_text("not an image")
    (src / "anim.gif").write_bytes(b"GIF89a" + bytes(30))
    out = tmp_path / "out"
    rc = main(["predict", str(src), "-o", str(out), "--backend", "torch", "--no-progress"])
    assert rc == 1
    text = capsys.readouterr()
    assert "Traceback" not in text.err + text.out
    assert "failures (2)" in text.out
    for name, found in (("trunc.png", "truncated or corrupt"), ("empty.tif", "empty file")):
        line = next(ln for ln in text.out.splitlines() if name in ln and "expected" in ln)
        assert found in line, line
    # not images by their suffix: one note, not failures
    assert "skipped 2 file(s) that are not images by their suffix (.gif, .txt)" in text.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["counts.csv", "good_labels.png", "good_mask.png", "good_nuclei.csv", "predict_summary.json",
                     "unetpp-run.json"]
    summary = json.loads((out / "predict_summary.json").read_text())
    assert summary["n_failed"] == 2 and summary["n_predicted"] == 1
    assert sorted(Path(p).name for p in summary["skipped_not_images"]) == ["anim.gif", "notes.txt"]
    # other settings: refused (results would be mixed), unless --overwrite, which recomputes from scratch
    again = ["predict", str(src / "good.png"), "-o", str(out), "--backend", "torch", "--min-area", "20",
             "--no-progress"]
    assert main(again) == 2
    assert "options.min_area" in capsys.readouterr().err
    assert main([*again, "--overwrite"]) == 0
    summary = json.loads((out / "predict_summary.json").read_text())
    assert (summary["n_predicted"], summary["n_skipped"], summary["status"]) == (1, 0, "complete")


def test_options_are_checked():
    for kw in ({"mode": "crop"}, {"scale": "huge"}, {"scale": "0"}, {"threshold": 1.5}, {"batch": 0},
               {"overlap": 1.0}, {"bit16": "log"}):
        with pytest.raises(InputError, match="expected"):
            PredictOptions(**kw)
    assert PredictOptions(mode="tile", scale="0.5").scale == 0.5


def test_predict_image_threshold_and_labels_agree(shipped_runtime):
    img = np.full((100, 140, 3), 8, np.uint8)
    cv2.circle(img, (70, 50), 15, (200, 200, 200), -1)
    res = predict_image(img, shipped_runtime, PredictOptions(mode="tile", scale="fit"))
    assert res["prob"].shape == (100, 140) and res["mask"].dtype == bool
    np.testing.assert_array_equal(res["mask"], res["prob"] >= 0.5)
    assert res["meta"]["scale"] == pytest.approx(0.96) and res["meta"]["n_tiles"] == 2


def test_scale_rules_by_hand():
    from unetpp.predict import scale

    assert scale.parse_scale("auto") == "auto" and scale.AUTO_RULE == "fit"
    assert scale.parse_scale("Nuclei@40") == "nuclei@40" and scale.nuclei_target("nuclei@40") == 40.0
    assert scale.geometric_scale("fit", 520, 696) == pytest.approx(96 / 520)
    assert scale.geometric_scale("area", 256, 400) == pytest.approx(96 / 320)
    assert scale.nuclei_scale(360.0, 500, 500, target_area=90.0) == pytest.approx(0.5)
    assert scale.nuclei_scale(None, 256, 400) == pytest.approx(96 / 320)  # nothing found: the area rule
    with pytest.raises(InputError, match="positive area"):
        scale.parse_scale("nuclei@-3")


def test_nuclei_rule_rescales_by_the_first_pass(shipped_runtime):
    img = np.full((256, 256, 3), 8, np.uint8)
    for cy, cx, r in DISCS:
        cv2.circle(img, (cx, cy), r, (190, 190, 190), -1)
    res = predict_image(img, shipped_runtime, PredictOptions(mode="tile", scale="nuclei@100"))
    median = res["meta"]["first_pass_median_area"]
    assert np.pi * 10**2 * 0.6 < median < np.pi * 14**2 * 1.6  # the discs' areas, as the first pass sees them
    assert res["meta"]["scale"] == pytest.approx(np.sqrt(100 / median), rel=1e-5)
    assert len(res["table"]) == len(DISCS)


def test_overlays_and_gallery_without_ground_truth(shipped_runtime, tmp_path: Path):
    """--overlays: <stem>_overlay.png is the image with the predicted labels' contours in green, and index.html
    shows every image with its nucleus count."""
    from unetpp.predict.folder import predict_paths
    from unetpp.report.overlay import PRED_COLOR, contour_mask

    img = np.full((128, 160, 3), 8, np.uint8)
    for cy, cx, r in ((40, 40, 12), (80, 110, 15)):
        cv2.circle(img, (cx, cy), r, (190, 190, 190), -1)
    cv2.imwrite(str(tmp_path / "two <discs>.png"), img)
    out = tmp_path / "out"
    summary = predict_paths([tmp_path / "two <discs>.png"], out, shipped_runtime,
                            PredictOptions(mode="resize", overlay=True), progress=False)
    assert summary["n_failed"] == 0
    labels = _read(out / "two <discs>_labels.png")
    overlay = _read(out / "two <discs>_overlay.png")
    n = int(labels.max())
    assert n >= 2 and overlay.shape == img.shape
    edge = contour_mask(labels)
    assert edge.any() and (overlay[edge] == PRED_COLOR).all()
    assert (overlay[~edge] == img[~edge]).all()  # nothing else changed
    page = (out / "index.html").read_text()
    assert "two &lt;discs&gt;" in page and f"nuclei pred {n}" in page and 'src="two%20%3Cdiscs%3E_overlay.png"' in page
