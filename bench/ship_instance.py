"""Make a trained instance checkpoint the shipped one: its post-processing becomes the setting chosen on the
selection set through the product path (bench/instance_select.py's `chosen`, made by unetpp.tune), written into
the checkpoint's metadata by unetpp.tune.write_choice with the selection figures, atomically (by default over
src/unetpp/weights/nested_unet_instance.pt).

    python bench/ship_instance.py --ckpt RUN/best.pt --select bench/results/instance_select.json \
        [--out src/unetpp/weights/nested_unet_instance.pt]

Afterwards: measure the shipped file on val (bench/instance_val.py) and write its figures and SHA-256 into
src/unetpp/weights/cards.json (tests/model/test_cards.py holds the file to its card).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unetpp import tune
from unetpp.atomic import file_sha256
from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
from unetpp.model.sources import SHIPPED_MODELS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="the trained checkpoint (a run's best.pt)")
    ap.add_argument("--select", type=Path, required=True, help="bench/instance_select.py's JSON for it")
    ap.add_argument("--default-depth", type=int, choices=(1, 2, 3, 4), default=None,
                    help="the output depth predict runs by default (UNet++ pruning; a deeply supervised model only): "
                    "the fastest whose selection-set mAP is within 0.01 of full depth")
    ap.add_argument("--depth-report", default=None, help="where that depth was chosen (recorded in the metadata)")
    ap.add_argument("--out", type=Path, default=SHIPPED_MODELS["instance"])
    args = ap.parse_args()
    chosen = json.loads(args.select.read_text())["chosen"]
    tune.write_choice(args.ckpt, chosen, args.out, {"report": str(args.select),
                                                     "ids": "src/unetpp/data/splits/selection_ids.txt"})
    ck = load_checkpoint(args.out)
    meta = dict(ck.meta)
    if args.default_depth is not None:
        if args.default_depth < 4 and not ck.config.deep_supervision:
            raise SystemExit(f"--default-depth {args.default_depth} needs a deeply supervised model; "
                             f"{args.ckpt} is not")
        meta["default_depth"] = args.default_depth
        meta["default_depth_chosen_on"] = args.depth_report
        save_checkpoint(args.out, ck.model, ck.preprocess, meta=meta)
    print(f"{args.out}: epoch {meta.get('epoch')}, default depth {meta.get('default_depth', 4)}, "
          f"seeds {meta['seed_params']}, sha256 {file_sha256(args.out)}")


if __name__ == "__main__":
    main()
