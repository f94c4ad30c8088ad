"""Where the phantom nuclei come from (issue 26 item 3): on the selection set's kept outputs (bench/instance_select.py
--cache: the product path, the default int8 runtime), the shipped setting and one change at a time, per modality:
mAP, predicted / true nuclei, false positives at IoU 0.5 and phantoms (predicted nuclei with no pixel on any true
nucleus: outlines on empty background).

    python bench/accuracy/phantoms.py KEPT.pkl OUT.json
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np

from unetpp import tune
from unetpp.eval.instance_metrics import instance_score, phantom_count
from unetpp.model.checkpoint import load_checkpoint
from unetpp.model.sources import SHIPPED_MODELS
from unetpp.predict.seeds import SeedParams

CHANGES = [("own", {}), ("min_mean_fg 0", {"min_mean_fg": 0.0}), ("min_mean_fg 0.75", {"min_mean_fg": 0.75}),
           ("min_mean_fg 0.9", {"min_mean_fg": 0.9}), ("keep_unseeded off", {"keep_unseeded": False}),
           ("t_border 0.25", {"t_border": 0.25}), ("min_area 32", {"min_area": 32})]


def figures(kept: list, p: SeedParams) -> dict:
    n_phantoms = fp = n_pred = n_true = 0
    aps = []
    for k in kept:
        lab = tune.labels_for(k, p)
        sc = instance_score(lab, k.truth)
        aps.append(sc.ap)
        fp, n_pred, n_true = fp + sc.fp[0], n_pred + sc.n_pred, n_true + sc.n_true
        n_phantoms += phantom_count(lab, k.truth)
    return {"map": round(float(np.mean(aps)), 4), "n_pred": n_pred, "n_true": n_true, "fp_iou50": fp,
            "phantoms_on_background": n_phantoms}


def main() -> None:
    kept = pickle.loads(Path(sys.argv[1]).read_bytes())["kept"]
    own = SeedParams.from_dict(load_checkpoint(SHIPPED_MODELS["instance"]).meta["seed_params"])
    out = {}
    for mod in ("brightfield", "stained", "fluorescence"):
        some = [k for k in kept if k.modality == mod]
        out[mod] = {"images": len(some), "rows": {name: figures(some, SeedParams(**{**own.to_dict(), **change}))
                                                  for name, change in CHANGES}}
    Path(sys.argv[2]).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
