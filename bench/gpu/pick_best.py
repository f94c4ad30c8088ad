"""Print the run folder whose log.csv has the highest guide val IoU (the selection rule of `unetpp train`)."""

import csv
import sys
from pathlib import Path


def best_of(run: Path) -> float:
    with open(run / "log.csv") as fh:
        return max(float(row["val_iou_guide"]) for row in csv.DictReader(fh))


runs = [p for p in Path(sys.argv[1]).iterdir() if (p / "log.csv").is_file() and (p / "best.pt").is_file()]
if not runs:
    sys.exit("no finished run with log.csv and best.pt")
scores = {p: best_of(p) for p in runs}
for p, s in sorted(scores.items(), key=lambda kv: -kv[1]):
    print(f"{p.name}: best guide val IoU {s:.4f}", file=sys.stderr)
print(max(scores, key=scores.get))
