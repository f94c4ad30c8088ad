"""Guide model + distance split vs the instance model (+ TTA, + other runtimes) on the 134 val ids at full
resolution: `unetpp predict` then `unetpp evaluate --instances` per variant (val ids only report; nothing here
chooses anything).

    python bench/accuracy/instance_val.py [--variants guide,instance,instance_tta] [--threads 2] [--data data/dsb2018]
    python bench/accuracy/instance_val.py --variants instance_torch,instance_openvino,instance_int8 \
        --ir-fp32 runs/instance_rt/instance_fp32.xml --ir-int8 runs/instance_rt/instance_int8.xml

Variants: guide (`--model guide`, tile, its `fit` scale), instance (the default predict: the shipped instance
model through ONNX Runtime), instance_tta (+ `--tta`), instance_torch (`--backend torch`: the PyTorch reference),
instance_openvino / instance_int8 (OpenVINO IRs from `unetpp compile`), instance_ort_int8 (ONNX Runtime QDQ
int8). Results accumulate in bench/results/instance_val.json (a variant run again replaces its entry);
instance_val.md is rewritten from all entries, with each runtime's mAP drop against instance_torch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from unetpp.bench.provenance import repo_root

ROOT = repo_root(__file__)
UNETPP = [sys.executable, "-m", "unetpp"]
RESULTS = ROOT / "bench" / "results"
MODALITIES = ("fluorescence", "brightfield", "stained")


def variant_args(name: str, a: argparse.Namespace) -> list[str]:
    fp32 = ["--precision", "fp32"]  # the rows as recorded: ONNX Runtime fp32 (no longer predict's default)
    table = {"guide": ["--model", "guide", "--mode", "tile", *fp32], "instance": fp32, "instance_tta": [*fp32, "--tta"],
             "instance_torch": ["--backend", "torch"],
             "instance_openvino": ["--model", str(a.ir_fp32), "--backend", "openvino"],
             "instance_int8": ["--model", str(a.ir_int8), "--backend", "openvino"],
             "instance_ort_int8": ["--model", str(a.ort_int8), "--backend", "onnxruntime"]}
    if name not in table:
        raise SystemExit(f"unknown variant {name!r}: expected one of {', '.join(table)}")
    return table[name]


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def one(name: str, args: list[str], a: argparse.Namespace) -> dict:
    pred, ev = a.out / name, a.out / f"{name}_eval"
    cmd = [*UNETPP, "predict", str(a.data / "stage1_train"), "--ids", str(a.data / "val_ids.txt"), "-o", str(pred),
           "--no-progress", "--overwrite", "--no-resume", "--threads", str(a.threads), *args]
    wall = run(cmd)
    run([*UNETPP, "evaluate", "--instances", str(pred), "--gt", str(a.data), "--ids", str(a.data / "val_ids.txt"),
         "-o", str(ev)])
    summary = json.loads((ev / "summary.json").read_text())
    ps = json.loads((pred / "predict_summary.json").read_text())
    return {"command": "unetpp " + " ".join(cmd[3:]), "predict_wall_s": wall, "images_per_s": ps.get("images_per_s"),
            "tiles_per_s": ps.get("tiles_per_s"), "n_tiles": ps["timing"]["n_units"],
            "model": ps["settings"]["runtime"].get("model"), "backend": ps["settings"]["runtime"].get("backend"),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            **{k: summary[k] for k in ("map", "ap_50", "ap_75", "pixel_iou", "dice", "n_true", "n_pred",
                                       "by_modality")}}


def table(res: dict, machine: dict) -> str:
    lines = ["# Guide model + distance split vs instance model + seeds: 134 val ids, full resolution", "",
             f"{machine['cpu']} ({machine['usable_cores']} cores), `python bench/accuracy/instance_val.py` "
             "(commands per row in "
             "instance_val.json); `unetpp predict` (tile mode, `--scale auto`: guide `fit`, instance its own "
             "`nuclei@150` with a guide-model first pass) then `unetpp evaluate --instances`. mAP = DSB2018 "
             "(IoU 0.50-0.95). images/s = `predict_summary.json`'s end-to-end rate (read, two passes, tiles, "
             "seeds, watershed, writes) on this shared machine.", "",
             "| variant | mAP | AP@0.5 | AP@0.75 | pixel IoU | nuclei / true | images/s | mAP vs torch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ref = res.get("instance_torch", {}).get("map")
    for name, r in res.items():
        drop = f"{r['map'] - ref:+.4f}" if ref is not None and name.startswith("instance") and name != "instance_tta" \
            else "-"
        lines.append(f"| {name} | {r['map']:.4f} | {r['ap_50']:.4f} | {r['ap_75']:.4f} | {r['pixel_iou']:.4f} | "
                     f"{r['n_pred']:,} / {r['n_true']:,} | {r['images_per_s'] or 0:.2f} | {drop} |")
    lines += ["", "Per modality (eval/modality.py), pixel IoU / mAP / images:", "",
              "| variant | " + " | ".join(MODALITIES) + " |", "|---|---:|---:|---:|"]
    for name, r in res.items():
        cells = []
        for kind in MODALITIES:
            m = r["by_modality"].get(kind)
            cells.append(f"{m['pixel_iou']:.3f} / {m['map']:.3f} / {m['n_images']}" if m else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Run dates: " + ", ".join(f"{n} {r['date']}" for n, r in res.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="guide,instance,instance_tta")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ir-fp32", type=Path, default=ROOT / "runs" / "instance_rt" / "instance_fp32.xml")
    ap.add_argument("--ir-int8", type=Path, default=ROOT / "runs" / "instance_rt" / "instance_int8.xml")
    ap.add_argument("--ort-int8", type=Path, default=ROOT / "runs" / "instance_rt" / "instance_ort_int8.onnx")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "instance_val")
    a = ap.parse_args()
    from unetpp.atomic import write_json_atomic, write_text_atomic
    from unetpp.bench.provenance import provenance

    path = RESULTS / "instance_val.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    res = doc.get("results", {})
    for name in a.variants.split(","):
        res[name] = one(name, variant_args(name, a), a)
        doc = {"results": res, **provenance()}
        write_json_atomic(path, doc)
        print(f"{name}: mAP {res[name]['map']:.4f}  AP50 {res[name]['ap_50']:.4f}  pixel IoU "
              f"{res[name]['pixel_iou']:.4f}  {res[name]['n_pred']} nuclei  {res[name]['images_per_s']:.2f} img/s",
              flush=True)
    write_text_atomic(RESULTS / "instance_val.md", table(res, doc["machine"]))


if __name__ == "__main__":
    main()
