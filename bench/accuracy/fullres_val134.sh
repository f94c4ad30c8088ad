#!/usr/bin/env bash
# Issue 5's comparison, from the repository root: predict the 134 val ids at full resolution in both modes with the
# shipped model (ONNX Runtime, 2 threads), score them against stage1_train's per-nucleus masks (DSB2018 mAP, pixel
# IoU) with overlays and an HTML page, and record both summaries in bench/results/fullres_val134.{md,json}.
#   bash bench/accuracy/fullres_val134.sh [DATA]      # DATA holds stage1_train and val_ids.txt (default data/dsb2018)
set -euo pipefail
DATA=${1:-data/dsb2018}
U=.venv/bin/unetpp
for mode in resize tile; do
  $U predict "$DATA/stage1_train" --ids "$DATA/val_ids.txt" -o runs/fullres/$mode --mode $mode --threads 2 --no-progress --precision fp32
  $U evaluate --instances runs/fullres/$mode --gt "$DATA/stage1_train" --ids "$DATA/val_ids.txt" --overlays \
    -o runs/fullres/$mode/eval
done
.venv/bin/python - <<'PY'
import json
from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.bench.provenance import provenance
rows, out = [], {**provenance(), "command": "bash bench/accuracy/fullres_val134.sh"}
for mode in ("resize", "tile"):
    s = json.load(open(f"runs/fullres/{mode}/eval/summary.json"))
    p = json.load(open(f"runs/fullres/{mode}/predict_summary.json"))
    out[mode] = {"eval": {k: v for k, v in s.items() if k != "outputs"}, "settings": p["settings"]}
    rows.append(f"| {mode} | {s['pixel_iou']:.4f} | {s['dice']:.4f} | {s['map']:.4f} | {s['ap_50']:.4f} | "
                f"{s['ap_75']:.4f} | {s['n_pred']} / {s['n_true']} | {s['count_mae']:.2f} |")
m = out["machine"]
write_json_atomic("bench/results/fullres_val134.json", out)
write_text_atomic("bench/results/fullres_val134.md", (
    "# Full resolution on the 134 val ids: resize vs tile\n\n"
    f"`bash bench/accuracy/fullres_val134.sh` on {m['cpu']} ({m['cores']} cores), shipped checkpoint, ONNX Runtime, 2 threads. "
    "Pixel IoU/Dice: per image at the image's own size (probability >= 0.5 vs the union of the nucleus masks), "
    "mean over images. DSB2018 mAP: instance precision TP/(TP+FP+FN) averaged over IoU thresholds 0.50-0.95, "
    "mean over images. Count error: mean |predicted - true nuclei| per image.\n\n"
    "| mode | pixel IoU | Dice | DSB2018 mAP | AP@0.50 | AP@0.75 | nuclei pred / true | count error |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"))
print(open("bench/results/fullres_val134.md").read())
PY
