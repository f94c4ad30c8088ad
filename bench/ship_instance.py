"""Make a trained instance checkpoint the shipped one: its post-processing becomes the setting chosen on the
selection set (bench/instance_select.py's `chosen`), recorded in the checkpoint's metadata with the selection
figures, and the file is written atomically (by default over src/unetpp/weights/nested_unet_instance.pt).

    python bench/ship_instance.py --ckpt RUN/best.pt --select bench/results/instance_select.json \
        [--out src/unetpp/weights/nested_unet_instance.pt]

Afterwards: measure the shipped file on val (bench/instance_val.py) and write its figures and SHA-256 into
src/unetpp/weights/cards.json (tests/model/test_cards.py holds the file to its card).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unetpp.atomic import file_sha256
from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
from unetpp.model.resolve import SHIPPED_MODELS
from unetpp.predict.seeds import SeedParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="the trained checkpoint (a run's best.pt)")
    ap.add_argument("--select", type=Path, required=True, help="bench/instance_select.py's JSON for it")
    ap.add_argument("--key", default=None, help="the checkpoint's key in that JSON (default: the one matching "
                    "--ckpt's path, else the only one)")
    ap.add_argument("--default-depth", type=int, choices=(1, 2, 3, 4), default=None,
                    help="the output depth predict runs by default (UNet++ pruning; a deeply supervised model only): "
                    "the fastest whose selection-set mAP is within 0.01 of full depth")
    ap.add_argument("--depth-report", default=None, help="where that depth was chosen (recorded in the metadata)")
    ap.add_argument("--out", type=Path, default=SHIPPED_MODELS["instance"])
    args = ap.parse_args()
    found = json.loads(args.select.read_text())["checkpoints"]
    key = args.key or (str(args.ckpt) if str(args.ckpt) in found else None)
    if key is None:
        if len(found) != 1:
            raise SystemExit(f"{args.select} holds {len(found)} checkpoints; name one with --key: {sorted(found)}")
        key = next(iter(found))
    entry = found[key]
    chosen = SeedParams.from_dict(entry["chosen"]["params"])
    ck = load_checkpoint(args.ckpt)
    meta = dict(ck.meta)
    meta["seed_params_training"] = meta.get("seed_params")
    meta["seed_params"] = chosen.to_dict()
    meta["selection"] = {"report": str(args.select), "ids": "src/unetpp/data/splits/selection_ids.txt",
                         "chosen": entry["chosen"]["all"], "fold_spread": entry["chosen"]["fold_spread"]}
    if args.default_depth is not None:
        if args.default_depth < 4 and not ck.config.deep_supervision:
            raise SystemExit(f"--default-depth {args.default_depth} needs a deeply supervised model; "
                             f"{args.ckpt} is not")
        meta["default_depth"] = args.default_depth
        meta["default_depth_chosen_on"] = args.depth_report
    save_checkpoint(args.out, ck.model, ck.preprocess, meta=meta)
    print(f"{args.out}: epoch {meta.get('epoch')}, default depth {meta.get('default_depth', 4)}, "
          f"seeds {chosen.to_dict()}, sha256 {file_sha256(args.out)}")


if __name__ == "__main__":
    main()
