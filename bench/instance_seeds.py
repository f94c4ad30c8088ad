"""Choose labels_from_body_border's parameters for the instance model on held-out *train* ids; report on val ids.

For each image: scale so the median nucleus covers the checkpoint's target area (`--scale gt`: the true median, as
in training; `--scale estimate`: a first pass at scale 1 with the same model and post-processing gives the median;
`--scale guide`: the shipped guide's resize-mode pass gives it), predict the whole image (reflection-padded to a
multiple of 16), post-process at that scale, resize the labels back to the original size (nearest) and score
against the original per-nucleus masks (DSB2018 mAP, AP@0.5, AP@0.75).

  PYTHONPATH=src python bench/instance_seeds.py search --ckpt /work/instance_run/best.pt --out bench/results/x.json
  PYTHONPATH=src python bench/instance_seeds.py report --ckpt ... --ids val --params '{"t_border": 0.4}'
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from unetpp.atomic import write_json_atomic
from unetpp.data.prepare import sample_image_path
from unetpp.data.preprocess import normalize, read_bgr
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.instance_metrics import instance_score
from unetpp.model.checkpoint import load_checkpoint
from unetpp.predict.instances import label_nuclei
from unetpp.predict.seeds import SeedParams, labels_from_body_border
from unetpp.train.instance_data import InstanceCropDataset, build_instance_data, image_scale
from unetpp.train.instance_loop import RECAL_EPOCH
from unetpp.train.instance_targets import BorderParams, median_nucleus_area
from unetpp.train.validate import recalibrate_bn

ROOT = Path("data/dsb2018")


@torch.no_grad()
def predict_probs(model: torch.nn.Module, img: np.ndarray, cfg) -> np.ndarray:
    """Sigmoid (2, H, W) of a whole BGR image, reflection-padded to a multiple of 16 (at least 32)."""
    h, w = img.shape[:2]
    ph, pw = max(32, -(-h // 16) * 16) - h, max(32, -(-w // 16) * 16) - w
    padded = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else img
    x = torch.from_numpy(normalize(np.ascontiguousarray(padded), cfg))[None]
    return torch.sigmoid(model(x).float())[0, :, :h, :w].numpy()


def resize(img: np.ndarray, s: float) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def to_original(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(labels.astype(np.uint16), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


_GUIDE: list = []


@torch.no_grad()
def guide_median_area(img: np.ndarray) -> float | None:
    """Median nucleus area (original pixels) from the shipped guide model in resize mode: the whole image at 96x96,
    logits > 0.5 resized back, split by the project's distance split (unetpp.predict.instances)."""
    if not _GUIDE:
        _GUIDE.append(load_checkpoint(None))
    g = _GUIDE[0]
    x = torch.from_numpy(normalize(cv2.resize(img, (g.preprocess.size, g.preprocess.size)), g.preprocess))[None]
    logits = g.model(x)[0, 0].numpy()
    fg = cv2.resize(logits, (img.shape[1], img.shape[0])) > g.preprocess.logit_threshold
    return median_nucleus_area(label_nuclei(fg))


def image_probs(ck, id_: str, scale_mode: str, params: SeedParams) -> dict:
    """Probabilities at the model scale plus what scoring needs."""
    stage1 = ROOT / "stage1_train"
    img, gt = read_bgr(sample_image_path(stage1, id_)), load_gt_instances(stage1, id_).astype(np.int32)
    area = float(ck.meta["scale"]["target_area"])
    if scale_mode == "gt":
        s = image_scale(median_nucleus_area(gt), area)
    elif scale_mode == "guide":
        s = image_scale(guide_median_area(img), area)
    else:
        first = labels_from_body_border(*predict_probs(ck.model, img, ck.preprocess), params)
        s = image_scale(median_nucleus_area(first), area)
    probs = predict_probs(ck.model, resize(img, s), ck.preprocess)
    return {"id": id_, "scale": s, "probs": probs.astype(np.float16), "gt": gt, "fluo": is_fluorescence(img)}


def is_fluorescence(img: np.ndarray) -> bool:
    """ACCURACY.md's modality rule: three equal channels and a mean below 100 = dark-background fluorescence."""
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all() and img.mean() < 100)


def score(items: list[dict], params: SeedParams | None, split: str = "seeds") -> dict:
    scores = []
    for it in items:
        fg, border = it["probs"][0].astype(np.float32), it["probs"][1].astype(np.float32)
        if split == "seeds":
            lab = labels_from_body_border(fg, border, params)
        else:  # the project's distance split on the foreground channel alone
            lab = label_nuclei(fg > (params.t_fg if params else 0.5), min_area=8)
        scores.append(instance_score(to_original(lab, it["gt"].shape), it["gt"]))
    return {"map": float(np.mean([s.ap for s in scores])), "ap50": float(np.mean([s.at(0.5) for s in scores])),
            "ap75": float(np.mean([s.at(0.75) for s in scores])), "n_pred": int(sum(s.n_pred for s in scores)),
            "n_true": int(sum(s.n_true for s in scores)), "n_images": len(scores)}


def _around(v: float, step: float = 0.05) -> list[float]:
    return [round(min(max(v + k * step, 0.05), 0.95), 2) for k in (-1, 0, 1)]


def _around_int(v: int) -> list[int]:
    return sorted({max(1, v // 2), v, v * 2})


def search(items: list[dict]) -> dict:
    """Coordinate search: thresholds x flood, then the area limits, then thresholds +-0.05, then the flags."""
    tried: list[dict] = []

    def run(p: SeedParams) -> float:
        r = score(items, p)
        tried.append({"params": p.to_dict(), **r})
        return r["map"]

    best = SeedParams()
    best_map = run(best)
    grids = [
        lambda b: {"t_fg": [0.4, 0.5, 0.6, 0.7], "t_border": [0.2, 0.3, 0.4, 0.5, 0.6],
                   "flood": ["border", "distance"]},
        lambda b: {"min_seed_area": [1, 4, 9, 16, 25], "min_area": [8, 16, 32, 48, 64]},
        lambda b: {"t_fg": _around(b.t_fg), "t_border": _around(b.t_border)},
        lambda b: {"fill_holes": [True, False], "keep_unseeded": [True, False]},
        lambda b: {"min_mean_fg": [0.0, 0.8, 0.85, 0.9, 0.93, 0.96], "min_area": _around_int(b.min_area)},
    ]
    for make in grids:
        grid = make(best)
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            p = SeedParams(**{**best.to_dict(), **dict(zip(keys, values))})
            if any(t["params"] == p.to_dict() for t in tried):
                continue
            m = run(p)
            if m > best_map:
                best, best_map = p, m
    return {"best": best.to_dict(), "best_map": best_map, "tried": tried}


def recalibrate(ck, n: int, cache: Path) -> None:
    """Re-estimate the model's BatchNorm statistics over n fixed un-augmented crops of the fit (non-held-out) ids."""
    train_ids = (ROOT / "train_ids.txt").read_text().split()
    held = set(ck.meta["heldout_ids"])
    data = build_instance_data(ROOT / "stage1_train", train_ids, float(ck.meta["scale"]["target_area"]),
                               BorderParams.from_dict(ck.meta["border_params"]), cache=cache, progress=False)
    fit = data.subset([k for k, i in enumerate(train_ids) if i not in held])
    ds = InstanceCropDataset(fit, int(ck.meta["train_config"]["seed"]), int(ck.meta["crop"]), (0.8, 1.25), None,
                             ck.preprocess)
    x = torch.stack([ds[(RECAL_EPOCH, i % len(ds))][0] for i in range(n)])
    recalibrate_bn(ck.model, x, 16, torch.device("cpu"))
    ck.model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("search", "report"), help="search parameters, or report one setting")
    ap.add_argument("--ckpt", type=Path, required=True, help="instance checkpoint (best.pt or latest.pt)")
    ap.add_argument("--ids", choices=("heldout", "val"), default="heldout",
                    help="held-out train ids from the checkpoint meta (search) or val ids (report only)")
    ap.add_argument("--scale", choices=("gt", "estimate", "guide"), default="gt",
                    help="image scale from the true median nucleus area (gt), a first pass of the model at scale 1 "
                    "(estimate), or the shipped guide's 96x96 resize-mode pass (guide)")
    ap.add_argument("--params", default="{}", help="JSON SeedParams overrides for report / the first pass")
    ap.add_argument("--limit", type=int, default=None, help="only the first N ids")
    ap.add_argument("--bn-recalibrate", type=int, default=0, metavar="N",
                    help="first re-estimate BatchNorm statistics over N fixed crops of the fit ids (needs --cache)")
    ap.add_argument("--cache", type=Path, default=Path("/work/instance_run/instances_cache.npz"),
                    help="the training run's instances_cache.npz")
    ap.add_argument("--probs-cache", type=Path, default=None,
                    help="an .npz of the predicted probabilities: written on the first run, read on the next ones")
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    args = ap.parse_args()
    ck = load_checkpoint(args.ckpt)
    if args.bn_recalibrate:
        recalibrate(ck, args.bn_recalibrate, args.cache)
    if args.mode == "search" and args.ids != "heldout":
        raise SystemExit("search runs on held-out train ids only")
    ids = ck.meta["heldout_ids"] if args.ids == "heldout" else (ROOT / "val_ids.txt").read_text().split()
    ids = ids[: args.limit] if args.limit else ids
    params = SeedParams.from_dict(json.loads(args.params))
    t0 = time.monotonic()
    cached = {}
    if args.probs_cache and args.probs_cache.is_file():
        z = np.load(args.probs_cache)
        cached = {k: z[k] for k in z.files}
    items = []
    for i in ids:
        if f"probs_{i}" in cached:
            gt = load_gt_instances(ROOT / "stage1_train", i).astype(np.int32)
            img = read_bgr(sample_image_path(ROOT / "stage1_train", i))
            items.append({"id": i, "scale": float(cached[f"scale_{i}"]), "probs": cached[f"probs_{i}"], "gt": gt,
                          "fluo": is_fluorescence(img)})
        else:
            items.append(image_probs(ck, i, args.scale, params))
    if args.probs_cache and not cached:
        np.savez(args.probs_cache, **{f"probs_{it['id']}": it["probs"] for it in items},
                 **{f"scale_{it['id']}": np.float64(it["scale"]) for it in items})
    t1 = time.monotonic()
    result = {"ckpt": str(args.ckpt), "ckpt_epoch": ck.meta.get("epoch"), "ids": args.ids, "n": len(ids),
              "bn_recalibrate": args.bn_recalibrate,
              "scale": args.scale, "predict_s": round(t1 - t0, 1),
              "scales": {"min": min(i["scale"] for i in items), "median": float(np.median([i["scale"] for i in items])),
                         "max": max(i["scale"] for i in items)},
              "distance_split_on_fg": score(items, params, split="distance")}
    if args.mode == "search":
        result.update(search(items))
        half = len(items) // 2
        best = SeedParams.from_dict(result["best"])
        result["halves"] = {"first": score(items[:half], best), "second": score(items[half:], best),
                            "default_first": score(items[:half], SeedParams()),
                            "default_second": score(items[half:], SeedParams())}
    else:
        result["params"] = params.to_dict()
        result["seeds"] = score(items, params)
        for name, sel in (("fluorescence", True), ("other", False)):
            sub = [it for it in items if it["fluo"] == sel]
            if sub:
                result[f"seeds_{name}"] = score(sub, params)
                result[f"distance_split_on_fg_{name}"] = score(sub, params, split="distance")
    result["total_s"] = round(time.monotonic() - t0, 1)
    write_json_atomic(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "tried"}, indent=1, default=str))


if __name__ == "__main__":
    main()
