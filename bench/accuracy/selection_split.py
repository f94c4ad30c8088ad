"""Write the selection set (unetpp/data/splits/selection_ids.txt) and the strata of every train id.

A quarter of the train ids, stratified by modality x image size x crowding (unetpp.data.selection); the 64 ids the
shipped instance model held out (the last 64 of train_ids.txt) are always in it, so that a clean subset exists for
comparing with that model. Strata and counts go to bench/results/selection_split.{json,md}.

    python bench/accuracy/selection_split.py [--data DIR] [--fraction 0.25] [--seed 18]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import cv2

from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.bench.provenance import repo_root
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.data.selection import crowding_classes, shipped_selection_path, size_class, stratified_selection
from unetpp.eval.modality import modality

RESULTS = repo_root(__file__) / "bench" / "results"
OLD_HOLDOUT = 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    root = resolve_data_dir(args.data)
    ids = read_ids(root / "train_ids.txt")
    info = {}
    for id_ in ids:
        d = root / "stage1_train" / id_
        img = cv2.imread(str(d / "images" / f"{id_}.png"), cv2.IMREAD_COLOR)
        info[id_] = {"modality": modality(img), "size": size_class(*img.shape[:2]), "height": img.shape[0],
                     "width": img.shape[1], "nuclei": len(list((d / "masks").glob("*.png")))}
    crowd = crowding_classes({k: v["nuclei"] for k, v in info.items()})
    for k, v in info.items():
        v["crowding"] = crowd[k]
    strata = {k: f"{v['modality']}/{v['size']}/{v['crowding']}" for k, v in info.items()}
    chosen = stratified_selection(strata, args.fraction, args.seed, always=ids[-OLD_HOLDOUT:])
    write_text_atomic(shipped_selection_path(), "\n".join(chosen) + "\n")
    sel = set(chosen)
    table = Counter((strata[k], k in sel) for k in ids)
    rows = sorted({s for s in strata.values()})
    lines = ["# The selection set (train ids that training never sees)", "",
             f"`python bench/accuracy/selection_split.py --fraction {args.fraction} --seed {args.seed}`: "
             f"{len(chosen)} of "
             f"{len(ids)} train ids, stratified by modality / size / crowding; the last {OLD_HOLDOUT} train ids (held "
             "out by the previous instance model) always in. File: `src/unetpp/data/splits/selection_ids.txt`.", "",
             "| stratum (modality/size/crowding) | train ids | selection | fit |", "|---|---:|---:|---:|"]
    for s in rows:
        lines.append(f"| {s} | {table[(s, True)] + table[(s, False)]} | {table[(s, True)]} | {table[(s, False)]} |")
    for key in ("modality", "size", "crowding"):
        c_all = Counter(v[key] for v in info.values())
        c_sel = Counter(info[k][key] for k in chosen)
        lines.append("")
        lines.append(f"{key}: " + ", ".join(f"{k} {c_sel[k]}/{c_all[k]}" for k in sorted(c_all)))
    write_text_atomic(RESULTS / "selection_split.md", "\n".join(lines) + "\n")
    write_json_atomic(RESULTS / "selection_split.json", {
        "command": f"python bench/accuracy/selection_split.py --fraction {args.fraction} --seed {args.seed}",
        "n_train": len(ids), "n_selection": len(chosen), "always": ids[-OLD_HOLDOUT:],
        "ids": {k: {**v, "stratum": strata[k], "selection": k in sel} for k, v in info.items()}})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
