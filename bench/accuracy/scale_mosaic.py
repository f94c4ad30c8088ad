"""The whole scale decision (first pass, the instance model's check, the fragment check) on images far larger than
any training image: mosaics of 256x256 val fields (bench/accuracy/scale_estimate.py `mosaic`), 2000 and 5000 px a
side, through `unetpp.load().predict` with its defaults (the default runtime). Val fields only report here.

    python -m bench.accuracy.scale_mosaic --data data/dsb2018 [--sides 2000,5000]

Per mosaic: the true median nucleus area (nuclei wholly inside a field), the first pass's estimate, every pass of
the check (scale, nuclei, median area), the area the kept scale implies (target / scale^2) and the median the model
finds there, each as an error (max(r, 1/r)), the nuclei found against the true count, and the seconds. Writes
bench/results/scale_mosaic.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np

import unetpp
from bench.accuracy.scale_agreement import error, median_area
from bench.accuracy.scale_estimate import mosaic
from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.bench.provenance import provenance, repo_root
from unetpp.data.paths import read_ids
from unetpp.predict import scale as scale_rules

ROOT = repo_root(__file__)


def short(runtime: dict | None) -> str:
    r = runtime or {}
    return f"{r.get('runtime')} {r.get('precision')}, depth {r.get('depth')}, verified {r.get('verified')}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/dsb2018"))
    ap.add_argument("--sides", default="2000,5000")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale_mosaic")
    args = ap.parse_args()
    stage1 = args.data / "stage1_train"
    val = read_ids(ROOT / "src" / "unetpp" / "data" / "splits" / "val_ids.txt")
    fields = [i for i in val if cv2.imread(str(stage1 / i / "images" / f"{i}.png")).shape[:2] == (256, 256)]
    rows = []
    with unetpp.load() as model:
        runtime = model.info.get("runtime")
        for side in (int(s) for s in args.sides.split(",")):
            img, areas = mosaic(stage1, fields, side, 256)
            true = float(np.median(areas))
            t0 = time.perf_counter()
            labels, info = model.predict(img, channel_order="bgr")
            seconds = time.perf_counter() - t0
            meta = info["meta"]
            target = scale_rules.nuclei_target(info["protocol"]["scale_rule"])
            implied, found = target / meta["scale"] ** 2, median_area(labels)
            errors = {key: round(e, 3) if math.isfinite(e := error(est, true)) else None
                      for key, est in (("error_first_pass", meta.get("first_pass_median_area")),
                                       ("error_implied", implied), ("error_found", found))}
            rows.append({"side": side, "true_median_area": true, "true_nuclei_whole_in_fields": int(areas.size),
                         "first_pass": meta.get("first_pass_median_area"), "passes": meta.get("scale_passes"),
                         "kept": meta.get("scale_kept", 0), "scale": meta["scale"], "implied": implied,
                         "found_median": found, "nuclei": int(info["nuclei"]), **errors,
                         "seconds": round(seconds, 1)})
            print(rows[-1], flush=True)
    result = {**provenance(), "runtime": runtime, "mosaics": rows}
    write_json_atomic(args.out.with_suffix(".json"), result)
    lines = [f"# The scale decision on mosaics larger than any training image ({result['date']})", "",
             f"`{result.get('command', 'python -m bench.accuracy.scale_mosaic')}`; runtime {short(runtime)}. Error = "
             "estimate / true median nucleus area, either way (1.0 exact).", "",
             "| mosaic | true median | first pass | passes (scale: nuclei, median area) | kept scale | implied "
             "(error) | found there (error) | nuclei found | seconds |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        passes = "; ".join(f"{p['scale']:.3f}: {p['nuclei']}, {p['median_area']}" for p in r["passes"] or [])
        lines.append(f"| {r['side']}x{r['side']} | {r['true_median_area']:.0f} | {r['first_pass']} "
                     f"({r['error_first_pass']}x) | {passes} | {r['scale']:.3f} | {r['implied']:.0f} "
                     f"({r['error_implied']}x) | {r['found_median']} ({r['error_found']}x) | {r['nuclei']} | "
                     f"{r['seconds']} |")
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
