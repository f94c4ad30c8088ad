"""Today's default runtime (ONNX Runtime fp32) against the new one (the fastest verified: int8 OpenVINO once its
mAP on the shipped train-image set is within 0.005 of fp32) on the 134 val ids, full resolution, in one run.

    python bench/speed/default_runtime.py [--data data/dsb2018] [--threads 2] [--cache runs/default_runtime/cache]

Each row is `unetpp predict` (the shipped instance model, its defaults: tile mode, `nuclei@150`) then
`unetpp evaluate --instances`. The one-time build and check of the int8 model is timed first, in a model cache of
its own (fresh unless --cache names one already built), so neither row pays for it. Writes
bench/results/default_runtime.{json,md} with the machine and the commands. Val ids only report here: nothing
is chosen on them (the check uses train ids).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from unetpp.bench.provenance import repo_root

ROOT = repo_root(__file__)
RESULTS = ROOT / "bench" / "results"
ROWS = {"today (ORT fp32)": ["--precision", "fp32"], "new default": []}










def table(doc: dict) -> str:
    m, b = doc["machine"], doc["build"]
    load = doc.get("load_average") or {"start": ["?"], "end": ["?"]}
    lines = ["# Default runtime: today (ONNX Runtime fp32) vs the new default, 134 val ids, full resolution", "",
             f"{m.get('cpu')} ({m.get('usable_cores')} cores, shared machine: 1-min load average "
             f"{load['start'][0]} at the start, {load['end'][0]} at the end), {doc['date']}, "
             f"`{doc['command']}`. `unetpp predict` (shipped instance model, tile mode, `nuclei@150`) then "
             "`unetpp evaluate --instances`; images/s = predict_summary.json's end-to-end rate.", "",
             "| default | runtime | mAP | AP@0.5 | pixel IoU | nuclei / true | images/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in doc["results"].items():
        sel = r.get("selection") or {}
        what = f"{sel.get('runtime', r['backend'])} {sel.get('precision', '')}".strip()
        lines.append(f"| {name} | {what} | {r['map']:.4f} | {r['ap_50']:.4f} | {r['pixel_iou']:.4f} | "
                     f"{r['n_pred']:,} / {r['n_true']:,} | {r['images_per_s'] or 0:.2f} |")
    rows = list(doc["results"].values())
    if len(rows) == 2 and rows[0]["images_per_s"]:
        lines += ["", f"Speed-up {rows[1]['images_per_s'] / rows[0]['images_per_s']:.2f}x, mAP "
                  f"{rows[1]['map'] - rows[0]['map']:+.4f}."]
    c = b.get("check") or {}
    lines += ["", f"One-time build and check (first use of the model, then cached): {b['seconds']:.0f} s wall: int8 "
              f"{b['runtime']}, calibrated on {c.get('n_calibration_windows')} windows and checked on "
              f"{c.get('n_images')} train images: mAP fp32 {c.get('map_fp32', 0):.4f}, int8 {c.get('map_int8', 0):.4f} "
              f"(drop {c.get('map_drop', 0):+.4f}, allowed {c.get('max_map_drop')}): "
              f"{'passed' if c.get('passed') else 'FAILED'}."]
    f = doc.get("fallback_check")
    if f:  # recorded by hand from a separate command (no predict rows)
        lines += ["", f"Without OpenVINO (`{f['command']}`): int8 {f['backend']}, check mAP fp32 {f['map_fp32']:.4f}, "
                  f"int8 {f['map_int8']:.4f} (drop {f['map_drop']:+.4f}): {'passed' if f['passed'] else 'FAILED'}; "
                  f"build and check {f['build_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "default_runtime")
    ap.add_argument("--cache", type=Path, default=None, help="model cache (default: a fresh one under --out)")
    a = ap.parse_args()
    from unetpp.atomic import write_json_atomic, write_text_atomic
    from unetpp.bench.product_runs import choose_in_subprocess, predict_and_score
    from unetpp.bench.provenance import provenance

    cache = a.cache or a.out / f"cache-{time.strftime('%Y%m%d-%H%M%S')}"
    env = {**os.environ, "UNETPP_CACHE": str(cache)}
    env.pop("UNETPP_DEFAULT_RUNTIME", None)
    load_before = os.getloadavg()
    sel, seconds = choose_in_subprocess(env, a.threads, cwd=ROOT)
    record = next(Path(cache, "fast").glob("*/*.check.json"), None)
    build = {"seconds": seconds, "runtime": sel["runtime"],
             "check": json.loads(record.read_text()) if record else None}
    print(f"build: {build['seconds']} s -> {sel['runtime']} {sel['precision']} verified={sel['verified']}", flush=True)
    results = {}
    for name, extra in ROWS.items():
        results[name] = predict_and_score(a.data, a.out / ("fp32" if extra else "default"), extra, env, a.threads,
                                          ROOT)
        r = results[name]
        print(f"{name}: mAP {r['map']:.4f}  {r['n_pred']}/{r['n_true']} nuclei  {r['images_per_s']:.2f} img/s",
              flush=True)
    doc = {"results": results, "build": build, **provenance(load_before)}
    write_json_atomic(RESULTS / "default_runtime.json", doc)
    write_text_atomic(RESULTS / "default_runtime.md", table(doc))


if __name__ == "__main__":
    main()
