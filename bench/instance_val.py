"""Guide model + distance split vs the instance model + seeds, on the 134 val ids at full resolution, in one run:
`unetpp predict --mode tile` then `unetpp evaluate --instances` for each model (val ids only report; nothing here
chooses anything).

    python bench/instance_val.py --instance CHECKPOINT [--data data/dsb2018] [--out runs/instance_val]

Writes bench/results/instance_val.{md,json} (machine, commands, figures per modality, images/s of each predict).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNETPP = [sys.executable, "-m", "unetpp"]


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def one(name: str, model: list[str], data: Path, out: Path) -> dict:
    pred, ev = out / name, out / f"{name}_eval"
    cmd = [*UNETPP, "predict", str(data / "stage1_train"), "--ids", str(data / "val_ids.txt"), "-o", str(pred),
           "--mode", "tile", "--no-progress", "--overwrite", *model]
    wall = run(cmd)
    run([*UNETPP, "evaluate", "--instances", str(pred), "--gt", str(data), "--ids", str(data / "val_ids.txt"),
         "-o", str(ev)])
    summary = json.loads((ev / "summary.json").read_text())
    ps = json.loads((pred / "predict_summary.json").read_text())
    return {"command": " ".join(cmd[2:]), "predict_wall_s": wall, "images_per_s": ps.get("images_per_s"),
            "tiles_per_s": ps.get("tiles_per_s"), "n_tiles": ps["timing"]["n_units"],
            **{k: summary[k] for k in ("map", "ap_50", "ap_75", "pixel_iou", "dice", "n_true", "n_pred",
                                       "by_modality")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instance", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "instance_val")
    a = ap.parse_args()
    from unetpp.core.summary import machine_info

    res = {"guide": one("guide", [], a.data, a.out),
           "instance": one("instance", ["--model", str(a.instance)], a.data, a.out)}
    doc = {"results": res, "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "instance_checkpoint": str(a.instance)}
    (ROOT / "bench" / "results" / "instance_val.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["# Guide model + distance split vs instance model + seeds: 134 val ids, full resolution", "",
             f"{doc['date']}, {doc['machine']['cpu']} ({doc['machine']['usable_cores']} cores), "
             f"`python bench/instance_val.py --instance {a.instance}`; ONNX Runtime; `--scale auto` (guide: fit; "
             "instance: its own nuclei@A rule, two passes). mAP = DSB2018 (IoU 0.50-0.95).", "",
             "| model | mAP | AP@0.5 | AP@0.75 | pixel IoU | nuclei / true | images/s (predict, end to end) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['map']:.4f} | {r['ap_50']:.4f} | {r['ap_75']:.4f} | {r['pixel_iou']:.4f} | "
                     f"{r['n_pred']:,} / {r['n_true']:,} | {r['images_per_s'] or 0:.2f} |")
    lines += ["", "Per modality (eval/modality.py), pixel IoU / mAP / images:", "",
              "| model | " + " | ".join(["fluorescence", "brightfield", "stained"]) + " |", "|---|---:|---:|---:|"]
    for name, r in res.items():
        cells = []
        for kind in ("fluorescence", "brightfield", "stained"):
            m = r["by_modality"].get(kind)
            cells.append(f"{m['pixel_iou']:.3f} / {m['map']:.3f} / {m['n_images']}" if m else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (ROOT / "bench" / "results" / "instance_val.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
