"""Does stain normalisation at inference help the instance model on stained images? Selection set only.

Each stained image of the selection set (unetpp.eval.modality's rule) is predicted as it is and after Macenko
normalisation with torchstain (a maintained implementation: EIDOSLAB/torchstain, numpy backend) towards
(a) torchstain's default H&E reference and (b) a reference fitted on one stained image of the fit ids (the one
whose mean colour is the median of the fit stained images). Each variant goes through
`unetpp.load(CKPT).predict_many`: the product's own pipeline (scale, tiles, default depth and runtime, the
checkpoint's own post-processing); DSB2018 mAP against the per-nucleus masks.

    python bench/stain_norm.py --ckpt CKPT [--out bench/results/stain_norm.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import unetpp
from unetpp.atomic import write_json_atomic
from unetpp.data.paths import read_ids
from unetpp.data.prepare import sample_image_path
from unetpp.data.preprocess import read_bgr
from unetpp.data.selection import resolve_selection
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.instance_metrics import instance_score
from unetpp.eval.modality import modality

ROOT = Path("data/dsb2018")


def normaliser(reference: np.ndarray | None):
    import torchstain

    n = torchstain.normalizers.MacenkoNormalizer(backend="numpy")
    if reference is not None:
        n.fit(reference[..., ::-1].copy())
    return n


def normalised(n, bgr: np.ndarray) -> np.ndarray | None:
    try:
        out, _, _ = n.normalize(I=bgr[..., ::-1].copy(), stains=False)
    except Exception:  # noqa: BLE001 - Macenko fails on images without two stains; keep the image then
        return None
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8)[..., ::-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench/results/stain_norm.json"))
    args = ap.parse_args()
    train = read_ids(ROOT / "train_ids.txt")
    fit, sel = resolve_selection("shipped", train)
    stage1 = ROOT / "stage1_train"
    imgs = {i: read_bgr(sample_image_path(stage1, i)) for i in fit + sel}
    stained_fit = [i for i in fit if modality(imgs[i]) == "stained"]
    means = np.array([imgs[i].reshape(-1, 3).mean(0) for i in stained_fit])
    ref_id = stained_fit[int(np.argmin(np.abs(means - np.median(means, 0)).sum(1)))]
    model = unetpp.load(str(args.ckpt))
    variants = {"as is": None, "macenko, torchstain default reference": normaliser(None),
                f"macenko, reference {ref_id[:8]} (fit ids)": normaliser(imgs[ref_id])}
    rows = {k: [] for k in variants}
    ids = [i for i in sel if modality(imgs[i]) == "stained"]
    for i in ids:
        gt = load_gt_instances(stage1, i).astype(np.int32)
        for name, n in variants.items():
            img = imgs[i] if n is None else normalised(n, imgs[i])
            failed = img is None
            img = imgs[i] if failed else img
            (lab, _), = model.predict_many([img], channel_order="bgr")
            sc = instance_score(lab, gt)
            rows[name].append({"id": i, "map": sc.ap, "n_pred": sc.n_pred, "n_true": sc.n_true,
                               "normalisation_failed": failed})
    summary = {k: {"map": float(np.mean([r["map"] for r in v])), "n_pred": sum(r["n_pred"] for r in v),
                   "n_true": sum(r["n_true"] for r in v), "failed": sum(r["normalisation_failed"] for r in v)}
               for k, v in rows.items()}
    result = {"command": "python " + " ".join(sys.argv), "ckpt": str(args.ckpt), "stained_selection_ids": len(ids),
              "reference_id": ref_id, "torchstain": __import__("importlib.metadata").metadata.version("torchstain"),
              "summary": summary, "rows": rows}
    model.close()
    write_json_atomic(args.out, result)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
