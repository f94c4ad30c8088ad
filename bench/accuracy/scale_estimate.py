"""How well the automatic scale's first pass (predict/first_pass.py) estimates the median nucleus area, against the
ground truth of the per-nucleus masks: on the val images as they are, and on large mosaics of them (the images
predict sees from slide scanners and stitched fields), where the old whole-image squeeze failed.

    flock -s /tmp/unetpp-cpu.lock .venv/bin/python bench/accuracy/scale_estimate.py --data data/dsb2018 --threads 2

Writes bench/results/scale_estimate.{md,json}. For each image: the true median nucleus area (pixels of the image),
the whole-image squeeze's estimate (the rule before windows), and the first pass's estimate (windows above 1400
px a side); the error is estimate / truth (1.0 = exact; 25 % off in area is 12 % off in scale).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from unetpp.bench.provenance import provenance
from unetpp.predict.first_pass import WHOLE_IMAGE_MAX_SIDE, _areas, _probs, estimate_nucleus_area
from unetpp.predict.imageio import read_image
from unetpp.runtimes import open_runtime


def true_areas(sample: Path) -> np.ndarray:
    return np.asarray([(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127).sum()
                       for p in sorted((sample / "masks").glob("*.png"))], np.float64)


def whole_squeeze(img: np.ndarray, rt) -> float | None:  # noqa: ANN001
    areas = _areas(_probs(rt, [img], 96, img.shape[:2])[0], 0.5, 10, True, drop_edge=False)
    return float(np.median(areas)) if areas.size else None


def mosaic(stage1: Path, ids: list[str], side: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """`side` x `side` px of `tile` x `tile` fields (crops of the ids' images, in turn), and the nuclei's areas
    (those whose whole mask lies inside a field)."""
    out = np.zeros((side, side, 3), np.uint8)
    areas: list[float] = []
    k = 0
    for y in range(0, side, tile):
        for x in range(0, side, tile):
            sample = stage1 / ids[k % len(ids)]
            k += 1
            img, _ = read_image(sample / "images" / f"{sample.name}.png")
            crop = img[:tile, :tile]
            h, w = min(crop.shape[0], side - y), min(crop.shape[1], side - x)
            out[y:y + h, x:x + w] = crop[:h, :w]
            for p in sorted((sample / "masks").glob("*.png")):
                m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127
                inside = m[:h, :w].sum()
                if inside and inside == m.sum():
                    areas.append(float(inside))
    return out, np.asarray(areas)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/dsb2018"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/scale_estimate"))
    ap.add_argument("--mosaic-sides", default="2000,5000")
    args = ap.parse_args()
    stage1 = args.data / "stage1_train"
    val = [s for s in (args.data / "val_ids.txt").read_text().split() if s]
    rt = open_runtime("guide", threads=args.threads).activate()
    rows = []
    t0 = time.time()
    for i in val:
        img, _ = read_image(stage1 / i / "images" / f"{i}.png")
        truth = float(np.median(true_areas(stage1 / i)))
        est = estimate_nucleus_area(img, rt)
        rows.append({"image": i, "size": list(img.shape[:2]), "true": truth, "first_pass": est.median_area,
                     "uncertain": est.uncertain, "input_area": est.input_area})
    # mosaics of fluorescence-like 256x256 val fields (the commonest kind), cut from val images of that size
    fields = [i for i in val if cv2.imread(str(stage1 / i / "images" / f"{i}.png")).shape[:2] == (256, 256)]
    mosaics = []
    for side in (int(s) for s in args.mosaic_sides.split(",")):
        img, areas = mosaic(stage1, fields, side, 256)
        truth = float(np.median(areas))
        est = estimate_nucleus_area(img, rt)
        mosaics.append({"size": side, "fields": 256, "true": truth, "whole_squeeze": whole_squeeze(img, rt),
                        "first_pass": est.median_area, "window": est.window, "uncertain": est.uncertain,
                        "input_area": est.input_area})
    rt.deactivate()

    def within(rs: list[dict], key: str, tol: float) -> int:
        return sum(1 for r in rs if r[key] and abs(r[key] / r["true"] - 1) <= tol)

    result = {**provenance(), "seconds": round(time.time() - t0, 1),
              "whole_image_max_side": WHOLE_IMAGE_MAX_SIDE, "val": rows, "mosaics": mosaics,
              "val_within_25pct": within(rows, "first_pass", 0.25), "val_n": len(rows),
              "val_flagged_uncertain": sum(1 for r in rows if r["uncertain"])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# The automatic scale's first pass against the truth ({result['date']})", "",
             f"`{result['command']}` on {result['machine']['cpu']} ({result['machine']['os']}), "
             f"{result['seconds']} s.", "",
             f"- val, {len(rows)} images as they are (all <= {WHOLE_IMAGE_MAX_SIDE} px: the whole-image squeeze, "
             f"unchanged): estimate within 25 % of the true median area for {result['val_within_25pct']}; flagged "
             f"uncertain by the first pass alone: {result['val_flagged_uncertain']}.", "",
             "| mosaic | true median area | whole-image squeeze (before) | first pass (windows) | window side |",
             "|---|---:|---:|---:|---:|"]
    for m in mosaics:
        ws = f"{m['whole_squeeze']:.0f}" if m["whole_squeeze"] else "none"
        fp = f"{m['first_pass']:.0f}" if m["first_pass"] else "none"
        lines.append(f"| {m['size']}x{m['size']} of 256x256 val fields | {m['true']:.0f} | {ws} | {fp} | "
                     f"{m['window']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
