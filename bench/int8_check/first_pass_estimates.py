"""Measures the guide model's first-pass nucleus-size estimates: fp32 (ONNX Runtime) vs int8 (OpenVINO).

Run: UNETPP_DATA=data/dsb2018 OUT=/tmp/int8_check python -m bench.int8_check.first_pass_estimates 512

Inputs: DSB2018 stage1_train under $UNETPP_DATA, the 138 selection ids (src/unetpp/data/splits/selection_ids.txt)
and the shipped check images (src/unetpp/weights/guard), on which the int8 build is calibrated; argv[1] caps the
whole-image labelling side in px (0 = no cap, the default). Outputs: the int8 guide model, built once, at
$OUT/guide_int8_guard.xml, the per-image rows at $OUT/rows_<cap>.json, and each estimator's error against the true
median nucleus area and the int8-vs-fp32 differences on stdout.
"""

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from unetpp.bench.provenance import repo_root
from unetpp.compile.api import compile_model
from unetpp.data.preprocess import normalize
from unetpp.eval.instance_io import load_gt_instances
from unetpp.predict import first_pass as fpm
from unetpp.predict.imageio import read_image
from unetpp.runtimes import get_runtime, open_runtime

REPO = repo_root(__file__)


def views(x):
    """The 8 flips and rotations of a (C, H, W) array."""
    out = []
    for v in range(8):
        y = np.rot90(x, v % 4, axes=(1, 2))
        out.append(np.ascontiguousarray(y[:, :, ::-1] if v >= 4 else y))
    return out


def err(rows, k):
    """One line on estimator `k`'s error against the true median area, and its time per image."""
    r = np.array([abs(np.log(x[k] / x["gt"])) for x in rows if x[k]])
    return (
        f"{k}: median |log ratio to gt| {np.median(r):.3f}, within 25% {np.mean(r < np.log(1.25)):.3f}, "
        f"none {sum(1 for x in rows if not x[k])}, ms/img {1000 * np.mean([x[k + '_s'] for x in rows]):.1f}"
    )


def main():
    cv2.setNumThreads(1)
    root = Path(os.environ.get("UNETPP_DATA", "data/dsb2018")) / "stage1_train"
    out_dir = Path(os.environ.get("OUT", "/tmp/int8_check"))
    sel = (REPO / "src/unetpp/data/splits/selection_ids.txt").read_text().split()
    guard = sorted({p.name.split("_")[0].split(".")[0] for p in (REPO / "src/unetpp/weights/guard").glob("*.png")})

    xml = out_dir / "guide_int8_guard.xml"
    if not xml.is_file():
        samples = []
        for g in guard:
            img, _ = read_image(next((root / g / "images").glob("*.png")))
            samples += views(normalize(cv2.resize(img, (96, 96))))
        compile_model("guide", "openvino", xml, int8=True, samples=samples)
    rts = {
        "fp32": open_runtime("guide", threads=1).activate(),
        "int8": get_runtime("openvino", xml, threads=1).activate(),
    }

    cap = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    fpm.WHOLE_LABEL_SIDE = cap
    rows = []
    for sid in sel:
        img, _ = read_image(next((root / sid / "images").glob("*.png")))
        gt = load_gt_instances(root, sid)
        a = np.bincount(gt.ravel())[1:]
        a = a[a > 0]
        row = {"id": sid, "h": img.shape[0], "w": img.shape[1], "gt": float(np.median(a))}
        for name, rt in rts.items():
            t = time.perf_counter()
            e = fpm.estimate_nucleus_area(img, rt, 0.5, 10, True)
            row[name + "_s"] = time.perf_counter() - t
            row[name] = e.median_area
        rows.append(row)
    with open(out_dir / f"rows_{cap}.json", "w") as f:
        json.dump(rows, f)

    print(err(rows, "fp32"))
    print(err(rows, "int8"))
    d = np.array([abs(np.log(x["int8"] / x["fp32"])) for x in rows if x["int8"] and x["fp32"]])
    print(
        f"int8 vs fp32: median |log| {np.median(d):.4f}, max {d.max():.3f}, "
        f"share > 5%: {np.mean(d > np.log(1.05)):.3f}"
    )


if __name__ == "__main__":
    main()
