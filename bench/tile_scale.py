"""Choose `unetpp predict --mode tile`'s scale rule by measurement on DSB2018 TRAIN ids (never val).

For each sampled train id: the image read as `unetpp predict` reads it, the ground truth = union of its instance
masks (> 127) at full resolution, and for each candidate rule the full-resolution probability -> mask (p >= 0.5)
-> pixel IoU (the guide's per-image formula, +1e-5 smoothing) and the nucleus count vs the true count.
Also measures the training nucleus size at 96x96 (TRAIN_MEDIAN_AREA_96 in unetpp.predict.scale).

    flock -s /tmp/unetpp-cpu.lock .venv/bin/python bench/tile_scale.py --data data/dsb2018 --n 100 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tiled import predict_tiled  # noqa: E402 - bench/ is on sys.path when run as a script

from unetpp.predict import scale as rules
from unetpp.predict.image import PredictOptions, median_nucleus_area, predict_resize
from unetpp.predict.imageio import read_image
from unetpp.predict.instances import label_nuclei
from unetpp.runtimes import open_runtime

CANDIDATES = ["resize", "fit", "area", "0.25", "0.5", "nuclei", "nuclei@23.9"]


def gt_masks(sample: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127 for p in sorted((sample / "masks").glob("*.png"))]


def train_stats(root: Path, ids: list[str]) -> dict:
    areas, medians = [], []
    for i in ids:
        ms = gt_masks(root / i)
        h, w = ms[0].shape
        a = [m.sum() * 96 * 96 / (h * w) for m in ms]
        areas += a
        medians.append(float(np.median(a)))
    return {"n_images": len(ids), "n_nuclei": len(areas), "pooled_median_area_96": round(float(np.median(areas)), 3),
            "median_of_image_medians_96": round(float(np.median(medians)), 3),
            "quartiles_96": [round(float(np.percentile(areas, q)), 3) for q in (25, 75)]}


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(((pred & gt).sum() + 1e-5) / ((pred | gt).sum() + 1e-5))


METHOD = (
    "Per image: the prediction at full resolution, p >= 0.5, pixel IoU against the union of the instance masks (the "
    "guide's per-image formula), then the mean over images. `resize` is the guide's protocol (squeeze to 96x96, "
    "resize the probability back); the others are `--mode tile` with overlap 0.25 and a scale rule: `fit` = "
    "96/min(H,W), `area` = 96/sqrt(HW), a number = fixed factor, `nuclei@A` = two passes, a resize-mode pass "
    "estimates the median nucleus area, then the image is scaled so that it becomes A pixels; plain `nuclei` here "
    "means A = the median area of a training nucleus at 96x96 ({pooled} px, pooled over {n_nuclei} nuclei of "
    "{n_images} train ids; the median of per-image medians is {per_image} px). Relative count error: |nuclei found "
    "(components, split) - true nuclei| / true nuclei, median over images. Small = <= 400 px a side. `resize`'s "
    "seconds exclude its model call (made once per image, shared with the `nuclei` rules' first pass).")


def run_section(result: dict) -> str:
    """One measurement: its command, its ids, its table."""
    summary = result["summary"]
    lines = ["| rule | mean IoU | median IoU | mean IoU, small | mean IoU, large | median rel. count error | tiles "
             "| seconds |", "|---|---|---|---|---|---|---|---|"]
    for c, s in summary.items():
        lines.append(f"| {c} | {s['mean_iou']:.4f} | {s['median_iou']:.4f} | {s['mean_iou_small']} | "
                     f"{s['mean_iou_large']} | {s['median_rel_count_error']:.3f} | {s['tiles']} | {s['seconds']} |")
    return (f"`{result['command']}` ({result['elapsed_s']} s; {result['runtime']['backend']} "
            f"{result['runtime']['version']}, {result['machine']['threads']} threads, {result['machine']['platform']})"
            f"\n\n{result['n']} train ids (seed {result['seed']}, skipping the first {result.get('skip', 0)} of the "
            f"draw; {result['n_small']} small, {result['n_large']} large). Best tile rule here: "
            f"`{result['best_tile_rule']}`.\n\n" + "\n".join(lines) + "\n")


def write_report(results: list[dict], out: Path, titles: list[str] | None = None, note: str = "") -> str:
    """bench/results/tile_scale_choice.md from one or more measurements; the last one decides."""
    st = results[0]["train_stats"]
    md = ["# Tile-mode scale rule (`unetpp predict --mode tile --scale auto`), measured on train ids only\n",
          METHOD.format(pooled=st["pooled_median_area_96"], n_nuclei=st["n_nuclei"], n_images=st["n_images"],
                        per_image=st["median_of_image_medians_96"]) + "\n"]
    for i, r in enumerate(results):
        md.append(f"## {titles[i] if titles else f'Measurement {i + 1}'}\n\n" + run_section(r))
    md.append(f"**Chosen: `{results[-1]['best_tile_rule']}`**, the best tile rule of the last measurement, is what "
              "`--scale auto` means." + (f" {note}" if note else "") + "\n")
    text = "\n".join(md)
    out.with_suffix(".md").write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/dsb2018")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP ids of the draw (a disjoint set)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--out", default="bench/results/tile_scale_choice")
    ap.add_argument("--report", nargs="+", metavar="JSON", help="only write OUT.md from these measurements")
    ap.add_argument("--titles", nargs="+", help="section titles for --report")
    ap.add_argument("--note", default="", help="a closing paragraph for --report")
    args = ap.parse_args()
    if args.report:
        results = [json.loads(Path(p).read_text()) for p in args.report]
        print(write_report(results, Path(args.out), args.titles, args.note))
        return 0
    data = Path(args.data)
    root = data / "stage1_train"
    train_ids = [s for s in (data / "train_ids.txt").read_text().split() if s]
    stats = train_stats(root, train_ids)
    print("train nuclei at 96x96:", stats, flush=True)
    ids = sorted(random.Random(args.seed).sample(train_ids, args.skip + args.n)[args.skip:])
    cands = args.candidates.split(",")
    opts = PredictOptions(mode="tile")
    rt = open_runtime(threads=args.threads).activate()
    rows = []
    t_start = time.perf_counter()
    for k, id_ in enumerate(ids):
        img, info = read_image(root / id_ / "images" / f"{id_}.png")
        ms = gt_masks(root / id_)
        gt = np.any(ms, axis=0)
        row = {"id": id_, "height": info.height, "width": info.width, "gt_nuclei": len(ms)}
        first = predict_resize(img, rt)
        median = median_nucleus_area(first, opts)
        for c in cands:
            t0 = time.perf_counter()
            st: dict = {}
            if c == "resize":
                prob, s = first, None
            else:
                if c.startswith("nuclei"):
                    target = float(c.split("@")[1]) if "@" in c else rules.TRAIN_MEDIAN_AREA_96
                    s = rules.nuclei_scale(median, info.height, info.width, target_area=target)
                elif c in ("fit", "area"):
                    s = rules.geometric_scale(c, info.height, info.width)
                else:
                    s = float(c)
                prob = predict_tiled(img, rt, s, opts, st)
            pred = prob >= 0.5
            n = int(label_nuclei(pred).max())
            row[c] = {"iou": round(iou(pred, gt), 5), "nuclei": n, "scale": s, "tiles": st.get("n_tiles", 1),
                      "seconds": round(time.perf_counter() - t0, 3)}
        rows.append(row)
        print(f"[{k + 1}/{len(ids)}] {id_[:12]} {info.height}x{info.width} "
              + " ".join(f"{c}={row[c]['iou']:.3f}" for c in cands), flush=True)
    elapsed = time.perf_counter() - t_start
    summary = {}
    for c in cands:
        ious = np.array([r[c]["iou"] for r in rows])
        small = np.array([r[c]["iou"] for r in rows if max(r["height"], r["width"]) <= 400])
        large = np.array([r[c]["iou"] for r in rows if max(r["height"], r["width"]) > 400])
        cerr = np.array([abs(r[c]["nuclei"] - r["gt_nuclei"]) / max(r["gt_nuclei"], 1) for r in rows])
        summary[c] = {"mean_iou": round(float(ious.mean()), 4), "median_iou": round(float(np.median(ious)), 4),
                      "mean_iou_small": round(float(small.mean()), 4) if small.size else None,
                      "mean_iou_large": round(float(large.mean()), 4) if large.size else None,
                      "median_rel_count_error": round(float(np.median(cerr)), 4),
                      "tiles": int(sum(r[c]["tiles"] for r in rows)),
                      "seconds": round(float(sum(r[c]["seconds"] for r in rows)), 1)}
    best = max((c for c in cands if c != "resize"), key=lambda c: summary[c]["mean_iou"])
    n_small = sum(max(r["height"], r["width"]) <= 400 for r in rows)
    result = {"command": " ".join(["python"] + sys.argv), "ids": "train_ids.txt sample", "n": len(rows),
              "seed": args.seed, "skip": args.skip, "n_small": n_small, "n_large": len(rows) - n_small,
              "train_stats": stats,
              "summary": summary, "best_tile_rule": best, "elapsed_s": round(elapsed, 1),
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "threads": args.threads}, "runtime": rt.describe(), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(write_report([result], out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
