"""Score seed post-processing settings on a set of ids through the product path (unetpp.tune), for reporting.

The images go once through `unetpp.load(MODEL).predict_many` (the default runtime unless --precision/--backend
say otherwise: the pipeline `unetpp predict` runs) and the kept foreground and border probabilities are
post-processed with each setting given: the model's own (its metadata), and each --params (JSON, over the
model's own). Choosing is bench/instance_select.py's job, on the selection set; use this on val to report.

    python bench/instance_seeds.py --ids data/dsb2018/val_ids.txt --params '{"min_mean_fg": 0.75}' \
        --out bench/results/instance_seeds_val.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import unetpp
from unetpp import tune
from unetpp.atomic import write_json_atomic
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.model.checkpoint import load_checkpoint
from unetpp.model.sources import SHIPPED_MODELS
from unetpp.predict.seeds import SeedParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="instance")
    ap.add_argument("--precision", choices=("fp32", "int8"), default=None)
    ap.add_argument("--ids", type=Path, required=True)
    ap.add_argument("--params", action="append", default=[], help="JSON seed parameters over the model's own")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    ids = read_ids(args.ids)
    images, truths = tune.read_dsb2018(resolve_data_dir(), ids)
    t0 = time.perf_counter()
    with unetpp.load(args.model, **({"precision": args.precision} if args.precision else {})) as model:
        runtime = model.info.get("runtime")
        kept = tune.keep_outputs(model, images, truths, ids)
    predict_s = round(time.perf_counter() - t0, 1)
    own = SeedParams.from_dict(load_checkpoint(SHIPPED_MODELS.get(args.model, args.model)).meta["seed_params"])
    settings = {"own": own, **{p: SeedParams(**{**own.to_dict(), **json.loads(p)}) for p in args.params}}
    result = {"command": "python " + " ".join(sys.argv), "ids": str(args.ids), "n": len(ids), "runtime": runtime,
              "predict_s": predict_s, "settings": {k: tune.score_setting(kept, p) for k, p in settings.items()}}
    write_json_atomic(args.out, result)
    print(json.dumps({k: v["all"] for k, v in result["settings"].items()}, indent=1))


if __name__ == "__main__":
    main()
