"""Choose an instance checkpoint and its post-processing on the selection set (train ids training never saw).

For each checkpoint: every selection image is scaled as `unetpp predict` scales it (`--scale guide`: the shipped
guide's first pass gives the median nucleus; `gt`: the true median, for diagnosis only), predicted whole with PyTorch
(full depth, or `--depth d` for a deeply supervised model's pruned output), and the probabilities are cached. Then
a grid over labels_from_body_border's parameters is scored against the original per-nucleus masks.

The objective includes the count: objective = mAP - COUNT_WEIGHT * |predicted / true nuclei - 1| (pooled over the
images), so a setting that drops a tenth of the nuclei pays 0.025 mAP. A flat setting is preferred to a sharp
optimum: each grid point is rated by the mean objective of itself and its grid neighbours (one step along any one
parameter), and the best rated point is chosen. Reported for the chosen setting, the sharp optimum and the
checkpoint's own (metadata) setting: the objective and mAP on four stratified folds of the selection set (their
spread), per modality, the count, and the outline bias (median predicted / true area of matched nuclei).

    python bench/instance_select.py --ckpt A.pt [--ckpt B.pt ...] --out bench/results/instance_select.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instance_seeds import guide_median_area, resize, to_original  # noqa: E402

from unetpp.atomic import write_json_atomic, write_text_atomic  # noqa: E402
from unetpp.data.paths import read_ids  # noqa: E402
from unetpp.data.prepare import sample_image_path  # noqa: E402
from unetpp.data.preprocess import normalize, read_bgr  # noqa: E402
from unetpp.data.selection import shipped_selection_path  # noqa: E402
from unetpp.eval.instance_io import load_gt_instances  # noqa: E402
from unetpp.eval.instance_metrics import instance_score, matched_area_ratios  # noqa: E402
from unetpp.eval.modality import MODALITIES, modality  # noqa: E402
from unetpp.model.checkpoint import load_checkpoint  # noqa: E402
from unetpp.model.network import PrunedNestedUNet  # noqa: E402
from unetpp.predict.seeds import SeedParams, labels_from_body_border  # noqa: E402
from unetpp.train.instance_data import image_scale  # noqa: E402
from unetpp.train.instance_targets import median_nucleus_area  # noqa: E402

ROOT = Path("data/dsb2018")
COUNT_WEIGHT = 0.25
FOLDS = 4
GRID = {
    "t_fg": [0.5, 0.6, 0.7],
    "t_border": [0.1, 0.15, 0.25, 0.35, 0.45, 0.55],
    "min_mean_fg": [0.0, 0.6, 0.75, 0.85, 0.9],
    "min_area": [8, 16, 32],
}
REFINE = {"t_grow": [None, 0.5, 0.4, 0.3], "min_seed_area": [4, 9, 16], "flood": ["border", "distance"]}


@torch.no_grad()
def whole_image_probs(net: torch.nn.Module, img: np.ndarray, cfg) -> np.ndarray:
    h, w = img.shape[:2]
    ph, pw = max(32, -(-h // 16) * 16) - h, max(32, -(-w // 16) * 16) - w
    padded = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else img
    x = torch.from_numpy(normalize(np.ascontiguousarray(padded), cfg))[None]
    return torch.sigmoid(net(x).float())[0, :, :h, :w].numpy()


def predict_items(ckpt: Path, ids: list[str], scale: str, depth: int | None, cache: Path | None) -> list[dict]:
    ck = load_checkpoint(ckpt)
    net = PrunedNestedUNet(ck.model, depth).eval()
    area = float(ck.meta["scale"]["target_area"])
    stored = dict(np.load(cache)) if cache and cache.is_file() else {}
    items, fresh = [], {}
    for id_ in ids:
        img = read_bgr(sample_image_path(ROOT / "stage1_train", id_))
        gt = load_gt_instances(ROOT / "stage1_train", id_).astype(np.int32)
        if f"p_{id_}" in stored:
            probs, s = stored[f"p_{id_}"], float(stored[f"s_{id_}"])
        else:
            median = median_nucleus_area(gt) if scale == "gt" else guide_median_area(img)
            s = image_scale(median, area)
            probs = whole_image_probs(net, resize(img, s), ck.preprocess).astype(np.float16)
            fresh[f"p_{id_}"], fresh[f"s_{id_}"] = probs, np.float64(s)
        items.append({"id": id_, "scale": s, "probs": probs, "gt": gt, "modality": modality(img)})
    if cache and fresh:
        np.savez(cache, **stored, **fresh)
    return items


def labels_of(it: dict, p: SeedParams) -> np.ndarray:
    lab = labels_from_body_border(it["probs"][0].astype(np.float32), it["probs"][1].astype(np.float32), p)
    return to_original(lab, it["gt"].shape)


def per_image(items: list[dict], p: SeedParams) -> list[dict]:
    rows = []
    for it in items:
        lab = labels_of(it, p)
        sc = instance_score(lab, it["gt"])
        rows.append({"id": it["id"], "modality": it["modality"], "ap": sc.ap, "ap50": sc.at(0.5),
                     "n_pred": sc.n_pred, "n_true": sc.n_true, "ratios": matched_area_ratios(lab, it["gt"])})
    return rows


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    n_pred, n_true = sum(r["n_pred"] for r in rows), sum(r["n_true"] for r in rows)
    m = float(np.mean([r["ap"] for r in rows]))
    count_err = n_pred / max(n_true, 1) - 1.0
    ratios = np.concatenate([r["ratios"] for r in rows])
    return {"objective": m - COUNT_WEIGHT * abs(count_err), "map": m,
            "ap50": float(np.mean([r["ap50"] for r in rows])), "n_pred": n_pred, "n_true": n_true,
            "count_error": count_err, "images": len(rows),
            "area_ratio_median": float(np.median(ratios)) if ratios.size else None}


def folds(ids: list[str], mods: dict[str, str]) -> list[set[str]]:
    """FOLDS folds, each holding every modality in proportion (round-robin within a modality, in id order)."""
    out: list[set[str]] = [set() for _ in range(FOLDS)]
    for m in MODALITIES:
        for k, id_ in enumerate(i for i in ids if mods[i] == m):
            out[k % FOLDS].add(id_)
    return out


def report(items: list[dict], p: SeedParams, fold_sets: list[set[str]]) -> dict:
    rows = per_image(items, p)
    out = {"params": p.to_dict(), "all": summarise(rows)}
    out["folds"] = [summarise([r for r in rows if r["id"] in f]) for f in fold_sets]
    out["fold_spread"] = {k: [min(f[k] for f in out["folds"]), max(f[k] for f in out["folds"])]
                          for k in ("objective", "map", "count_error")}
    out["modality"] = {m: summarise([r for r in rows if r["modality"] == m]) for m in MODALITIES}
    return out


def grid_search(items: list[dict], base: SeedParams) -> dict:
    keys = list(GRID)
    shape = [len(GRID[k]) for k in keys]
    objective = np.full(shape, np.nan)
    for idx in itertools.product(*(range(n) for n in shape)):
        p = SeedParams(**{**base.to_dict(), **{k: GRID[k][i] for k, i in zip(keys, idx)}})
        objective[idx] = summarise(per_image(items, p))["objective"]
    rated = np.zeros(shape)
    for idx in itertools.product(*(range(n) for n in shape)):
        vals = [objective[idx]]
        for d in range(len(shape)):
            for step in (-1, 1):
                j = list(idx)
                j[d] += step
                if 0 <= j[d] < shape[d]:
                    vals.append(objective[tuple(j)])
        rated[idx] = float(np.mean(vals))
    flat = np.unravel_index(int(np.argmax(rated)), shape)
    sharp = np.unravel_index(int(np.nanargmax(objective)), shape)
    pick = lambda idx: {k: GRID[k][int(i)] for k, i in zip(keys, idx)}  # noqa: E731
    return {"flat": pick(flat), "flat_rating": float(rated[flat]), "sharp": pick(sharp),
            "sharp_objective": float(objective[sharp]), "grid": GRID,
            "objective": objective.round(5).tolist()}


def refine(items: list[dict], p: SeedParams) -> tuple[SeedParams, list[dict]]:
    """The extent / seed / flood choices around the grid's flat point, one at a time (kept only if better)."""
    tried = []
    best, best_obj = p, summarise(per_image(items, p))["objective"]
    for key, values in REFINE.items():
        for v in values:
            q = SeedParams(**{**best.to_dict(), key: v})
            obj = summarise(per_image(items, q))["objective"]
            tried.append({"params": {key: v}, "objective": obj})
            if obj > best_obj + 1e-4:
                best, best_obj = q, obj
    return best, tried


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, action="append", required=True)
    ap.add_argument("--ids", type=Path, default=None, help="ids file (default: the shipped selection set)")
    ap.add_argument("--scale", choices=("guide", "gt"), default="guide")
    ap.add_argument("--depth", type=int, default=None, help="a deeply supervised model's output depth (default 4)")
    ap.add_argument("--cache-dir", type=Path, default=Path("runs/select_cache"))
    ap.add_argument("--no-search", action="store_true", help="only report the checkpoints' own settings")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    ids = read_ids(args.ids or shipped_selection_path())
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    result = {"command": "python " + " ".join(sys.argv), "ids": str(args.ids or "shipped selection"),
              "n": len(ids), "scale": args.scale, "depth": args.depth, "count_weight": COUNT_WEIGHT,
              "checkpoints": {}}
    for ckpt in args.ckpt:
        t0 = time.monotonic()
        tag = f"{ckpt.parent.name}_{ckpt.stem}_{args.scale}_d{args.depth or 4}"
        items = predict_items(ckpt, ids, args.scale, args.depth, args.cache_dir / f"{tag}.npz")
        mods = {it["id"]: it["modality"] for it in items}
        fold_sets = folds(ids, mods)
        meta = load_checkpoint(ckpt).meta
        own = SeedParams.from_dict(meta.get("seed_params", {})) if meta.get("seed_params") else SeedParams()
        entry = {"epoch": meta.get("epoch"), "predict_s": round(time.monotonic() - t0, 1),
                 "own_setting": report(items, own, fold_sets)}
        if not args.no_search:
            g = grid_search(items, own)
            flat = SeedParams(**{**own.to_dict(), **g["flat"]})
            chosen, tried = refine(items, flat)
            entry.update({"grid": g, "refine_tried": tried, "chosen": report(items, chosen, fold_sets),
                          "sharp": report(items, SeedParams(**{**own.to_dict(), **g["sharp"]}), fold_sets)})
        entry["total_s"] = round(time.monotonic() - t0, 1)
        result["checkpoints"][str(ckpt)] = entry
        write_json_atomic(args.out, result)
        brief = {k: entry[k]["all"] for k in ("own_setting", "chosen", "sharp") if k in entry}
        print(ckpt, json.dumps(brief, indent=1), flush=True)
    write_text_atomic(args.out.with_suffix(".md"), markdown(result))


def _row(name: str, r: dict) -> str:
    a = r["all"]
    spread = r["fold_spread"]
    mods = " / ".join(f"{r['modality'][m].get('map', float('nan')):.3f}" for m in MODALITIES)
    return (f"| {name} | {a['objective']:.4f} ({spread['objective'][0]:.3f}–{spread['objective'][1]:.3f}) | "
            f"{a['map']:.4f} ({spread['map'][0]:.3f}–{spread['map'][1]:.3f}) | {a['ap50']:.4f} | "
            f"{a['n_pred']} / {a['n_true']} ({a['count_error']:+.1%}) | {mods} | {a['area_ratio_median']:.3f} |")


def markdown(result: dict) -> str:
    lines = ["# Checkpoint and post-processing selection on the selection set", "",
             f"`{result['command']}`", "",
             f"{result['n']} selection ids (train ids the run never trained on), scale from `{result['scale']}`, "
             f"depth {result['depth'] or 4}; objective = mAP - {result['count_weight']} x |count error|; "
             f"brackets: min–max over {FOLDS} stratified folds; per modality mAP fluorescence / brightfield / "
             "stained; area ratio: median predicted / true area of matched nuclei (IoU > 0.5).", "",
             "| checkpoint, setting | objective | mAP | AP@0.5 | nuclei (count error) | mAP per modality | "
             "area ratio |", "|---|---:|---:|---:|---:|---|---:|"]
    for ckpt, e in result["checkpoints"].items():
        name = f"{Path(ckpt).parent.name}/{Path(ckpt).name} (epoch {e.get('epoch')})"
        for key in ("own_setting", "chosen", "sharp"):
            if key in e:
                lines.append(_row(f"{name}, {key.replace('_', ' ')}", e[key]))
        if "chosen" in e:
            lines.append(f"| {name} chosen parameters: `{json.dumps(e['chosen']['params'])}` | | | | | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
