"""A checkpoint of the TNBC run against the shipped instance model, through the path users run.

For each model: `unetpp predict` (the default protocol: the model's own scale rule, post-processing and default
depth; fp32 runtime via UNETPP_DEFAULT_RUNTIME=fp32 so no int8 build is made) and `unetpp evaluate --instances`,
on (a) the selection set (src/unetpp/data/splits/selection_ids.txt, DSB2018 stage1_train; per modality and on the
4 stratified folds of bench/instance_select.py: round-robin within a modality in the ids file's order) and (b) the
TNBC patients held out (src/unetpp/data/splits/tnbc_heldout_patients.txt; reported, never chosen on), scored
against their label maps as annotated. A candidate checkpoint is scored with the shipped model's post-processing
and default depth (its metadata copied over into an evaluation copy), so the comparison is of the weights alone.

    python bench/tnbc_compare.py --candidate /work/state/tnbc_run/run/best.pt --out /work/state/tnbc_run/eval \
        --json bench/results/instance_training_tnbc.json [--val]

With --val the 134 val ids are predicted and scored too, per modality, for the README's rows with and without TNBC
(reporting only). Objective = mAP - 0.25 x count miss (per image, as unetpp.tune).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from unetpp.eval.modality import MODALITIES
from unetpp.train.tnbc import split_patients
from unetpp.tune import COUNT_WEIGHT, stratified_folds

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "unetpp" / "weights" / "nested_unet_instance.pt"
SPLITS = ROOT / "src" / "unetpp" / "data" / "splits"
# predict applies a checkpoint's seed_params only where its meta records them as chosen (`selection`;
# unetpp.model.metadata.predict_facts), so both travel together: without `selection` a copy runs SeedParams' defaults.
COPIED_META = ("seed_params", "selection", "default_depth")


def eval_copy(candidate: Path, shipped: Path, out: Path) -> Path:
    """The candidate's weights with the shipped model's post-processing and default depth."""
    from unetpp.model.checkpoint import load_checkpoint, save_checkpoint

    ck, ref = load_checkpoint(candidate), load_checkpoint(shipped)
    meta = dict(ck.meta)
    meta["seed_params_training"] = meta.get("seed_params")
    meta.update({k: ref.meta[k] for k in COPIED_META if k in ref.meta})
    meta["evaluated_as"] = f"post-processing and default depth of {shipped.name} (bench/tnbc_compare.py)"
    save_checkpoint(out, ck.model, ck.preprocess, meta=meta)
    from unetpp.model.metadata import predict_facts

    if predict_facts(meta).get("seed_params") != ref.meta.get("seed_params"):
        raise SystemExit(f"{out}: predict would not apply {shipped.name}'s post-processing (see COPIED_META)")
    return out


def unetpp(args: list[str]) -> None:
    env = {**os.environ, "UNETPP_DEFAULT_RUNTIME": "fp32"}
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "unetpp", *args], check=True, env=env)
    print(f"  {args[0]} {time.monotonic() - t:.0f} s", flush=True)


def predict_and_score(model: Path, inputs: list[str], extra: list[str], gt: str, out: Path) -> list[dict]:
    pred, report = out / "pred", out / "eval"
    unetpp(["predict", *inputs, *extra, "--model", str(model), "-o", str(pred), "--no-progress", "--overwrite"])
    unetpp(["evaluate", "--instances", str(pred), "--gt", gt, "-o", str(report)])
    with open(report / "per_image.csv", newline="") as fh:
        return [{**r, "ap": float(r["ap"]), "ap_50": float(r["ap_50"]), "n_pred": int(r["n_pred"]),
                 "n_true": int(r["n_true"])} for r in csv.DictReader(fh)]


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    n_pred, n_true = sum(r["n_pred"] for r in rows), sum(r["n_true"] for r in rows)
    m, err = float(np.mean([r["ap"] for r in rows])), n_pred / max(n_true, 1) - 1.0
    miss = sum(abs(r["n_pred"] - r["n_true"]) for r in rows) / max(n_true, 1)  # unetpp.tune's count term
    return {"images": len(rows), "map": m, "ap50": float(np.mean([r["ap_50"] for r in rows])),
            "n_pred": n_pred, "n_true": n_true, "count_error": err, "count_miss": miss,
            "objective": m - COUNT_WEIGHT * miss}


def folds(ids: list[str], mods: dict[str, str]) -> list[set[str]]:
    """bench/instance_select.py's folds (unetpp.tune.stratified_folds) as sets of ids."""
    masks = stratified_folds(ids, [mods[i] for i in ids])
    return [{i for i, inside in zip(ids, m) if inside} for m in masks]


def selection_report(rows: list[dict], fold_sets: list[set[str]]) -> dict:
    out = {"all": summarise(rows), "modality": {m: summarise([r for r in rows if r["modality"] == m])
                                               for m in MODALITIES}}
    out["folds"] = [summarise([r for r in rows if r["id"] in f]) for f in fold_sets]
    return out


def paired(a: list[dict], b: list[dict], fold_sets: list[set[str]]) -> dict:
    """candidate - shipped per image, mean overall and per fold (the spread of the gain)."""
    ap_b = {r["id"]: r["ap"] for r in b}
    diff = {r["id"]: r["ap"] - ap_b[r["id"]] for r in a}
    per_fold = [float(np.mean([diff[i] for i in f if i in diff])) for f in fold_sets if set(f) & set(diff)]
    return {"map_gain": float(np.mean(list(diff.values()))), "map_gain_folds": per_fold,
            "images_better": sum(d > 0 for d in diff.values()), "images_worse": sum(d < 0 for d in diff.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", type=Path, default=None, help="the checkpoint to compare (none: --shipped-only)")
    ap.add_argument("--shipped", type=Path, default=SHIPPED)
    ap.add_argument("--data", default=os.environ.get("UNETPP_DATA", "/work/shared/data/dsb2018"))
    ap.add_argument("--tnbc", default=None, help="the TNBC folder (default: 'tnbc' beside --data)")
    ap.add_argument("--out", type=Path, required=True, help="work folder (predictions, reports)")
    ap.add_argument("--json", type=Path, default=None, help="where the figures go")
    ap.add_argument("--limit", type=int, default=None, help="first N selection ids and TNBC tiles (smoke test)")
    ap.add_argument("--tnbc-scale", type=float, default=None,
                    help="also predict the TNBC tiles at this fixed --scale (e.g. the training patients' median "
                    "scale, 0.68: what a user of 40x H&E can pass), beside the automatic one")
    ap.add_argument("--shipped-only", action="store_true", help="only predict and score the shipped model")
    ap.add_argument("--reuse-shipped", action="store_true", help="keep the shipped model's earlier outputs in OUT")
    ap.add_argument("--val", action="store_true", help="also predict and score the val ids (reporting only: per "
                    "modality with and without the candidate's training data; nothing is chosen on them)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.tnbc = a.tnbc or str(Path(a.data).parent / "tnbc")
    if a.candidate is None and not a.shipped_only:
        ap.error("--candidate is required unless --shipped-only")
    cand = None if a.shipped_only else eval_copy(a.candidate, a.shipped, a.out / "candidate_eval.pt")
    sel_ids = [s.strip() for s in (SPLITS / "selection_ids.txt").read_text().splitlines() if s.strip()]
    patients = set(split_patients("heldout"))
    tiles = sorted(str(p) for p in (Path(a.tnbc) / "images").iterdir() if p.name[:2] in patients)
    ids_file, val_file = SPLITS / "selection_ids.txt", SPLITS / "val_ids.txt"
    if a.limit:
        val_file = a.out / "val_ids_limit.txt"
        val_file.write_text("\n".join(val_file_ids(a.limit)) + "\n")
        sel_ids, tiles = sel_ids[:a.limit], tiles[:a.limit]
        ids_file = a.out / "selection_ids_limit.txt"
        ids_file.write_text("\n".join(sel_ids) + "\n")
    stage1 = str(Path(a.data) / "stage1_train")
    results = {}
    for name, model in (("shipped", a.shipped), ("candidate", cand))[:1 if a.shipped_only else 2]:
        done = a.reuse_shipped and name == "shipped" and (a.out / name / "tnbc" / "eval" / "per_image.csv").is_file()
        print(f"{name}: {model}", flush=True)
        if done:
            sel = predict_and_score_cached(a.out / name / "selection")
            tn = predict_and_score_cached(a.out / name / "tnbc")
        else:
            sel = predict_and_score(model, [stage1], ["--ids", str(ids_file)], stage1,
                                    a.out / name / "selection")
            tn = predict_and_score(model, tiles, [], a.tnbc, a.out / name / "tnbc")
        scaled = None
        if a.tnbc_scale:
            folder = a.out / name / f"tnbc_scale{a.tnbc_scale:g}"
            scaled = (predict_and_score_cached(folder) if done and (folder / "eval" / "per_image.csv").is_file()
                      else predict_and_score(model, tiles, ["--scale", f"{a.tnbc_scale:g}"], a.tnbc, folder))
        val = None
        if a.val:
            val_done = done and (a.out / name / "val" / "eval" / "per_image.csv").is_file()
            val = (predict_and_score_cached(a.out / name / "val") if val_done else
                   predict_and_score(model, [stage1], ["--ids", str(val_file)], stage1,
                                     a.out / name / "val"))
        results[name] = (sel, tn, scaled, val)
    if a.shipped_only:
        return 0
    mods = {r["id"]: r["modality"] for r in results["shipped"][0]}
    fold_sets = folds(sel_ids, mods)
    report = {"candidate": str(a.candidate), "shipped": str(a.shipped), "runtime": "UNETPP_DEFAULT_RUNTIME=fp32",
              "selection_ids": len(sel_ids), "tnbc_tiles": len(tiles), "tnbc_patients": sorted(patients)}
    for name, (sel, tn, scaled, val) in results.items():
        report[name] = {"selection": selection_report(sel, fold_sets), "tnbc_heldout": summarise(tn)}
        if val is not None:
            report[name]["val"] = {"all": summarise(val), "modality": {
                m: summarise([r for r in val if r["modality"] == m]) for m in MODALITIES}}
        if scaled is not None:
            report[name]["tnbc_heldout_fixed_scale"] = {"scale": a.tnbc_scale, **summarise(scaled)}
    report["gain_selection"] = paired(results["candidate"][0], results["shipped"][0], fold_sets)
    report["gain_tnbc"] = paired(results["candidate"][1], results["shipped"][1], [set(r["id"] for r in
                                                                                    results["shipped"][1])])
    text = json.dumps(report, indent=1)
    if a.json:
        a.json.write_text(text + "\n")
    print(table(report))
    return 0


def val_file_ids(limit: int) -> list[str]:
    return [s.strip() for s in (SPLITS / "val_ids.txt").read_text().splitlines() if s.strip()][:limit]


def predict_and_score_cached(out: Path) -> list[dict]:
    with open(out / "eval" / "per_image.csv", newline="") as fh:
        return [{**r, "ap": float(r["ap"]), "ap_50": float(r["ap_50"]), "n_pred": int(r["n_pred"]),
                 "n_true": int(r["n_true"])} for r in csv.DictReader(fh)]


def table(report: dict) -> str:
    lines = ["| model | selection mAP (folds) | objective | count | fluorescence / bright-field / stained | "
             "TNBC held-out mAP | TNBC AP@0.5 | TNBC count |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for name in ("shipped", "candidate"):
        s, t = report[name]["selection"], report[name]["tnbc_heldout"]
        fm = [f["map"] for f in s["folds"] if f] or [float("nan")]
        mods = " / ".join(f"{s['modality'][m].get('map', float('nan')):.3f}" for m in MODALITIES)
        lines.append(f"| {name} | {s['all']['map']:.4f} ({min(fm):.3f}–{max(fm):.3f}) | {s['all']['objective']:.4f} "
                     f"| {s['all']['count_error']:+.1%} | {mods} | {t['map']:.4f} | {t['ap50']:.4f} | "
                     f"{t['n_pred']} / {t['n_true']} ({t['count_error']:+.1%}) |")
    for name in ("shipped", "candidate"):
        v = report[name].get("val")
        if v:
            mods = " / ".join(f"{v['modality'][m].get('map', float('nan')):.4f}" for m in MODALITIES)
            lines.append(f"\nval (reporting only), {name}: mAP {v['all']['map']:.4f}, count "
                         f"{v['all']['count_error']:+.1%}; fluorescence / bright-field / stained {mods}")
    g = report["gain_selection"]
    lines.append(f"\nselection mAP gain (candidate - shipped): {g['map_gain']:+.4f}, per fold "
                 + ", ".join(f"{x:+.4f}" for x in g["map_gain_folds"])
                 + f"; images better / worse: {g['images_better']} / {g['images_worse']}")
    lines.append(f"TNBC held-out mAP gain: {report['gain_tnbc']['map_gain']:+.4f}")
    for name in ("shipped", "candidate"):
        f = report[name].get("tnbc_heldout_fixed_scale")
        if f:
            lines.append(f"TNBC held-out at --scale {f['scale']:g}, {name}: mAP {f['map']:.4f}, "
                         f"AP@0.5 {f['ap50']:.4f}, nuclei {f['n_pred']} / {f['n_true']} ({f['count_error']:+.1%})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
