"""Choose an instance model's post-processing on the selection set, through the path users run (unetpp.tune).

Each selection image (train ids training never saw) goes once through `unetpp.load(MODEL).predict_many`: the
default runtime (int8 OpenVINO at the model's default depth) unless --precision/--backend say otherwise, the guide's
first pass and the model's own scale rule, tiles and blending as `unetpp predict`. The foreground and border
probabilities at each image's size are kept (cached in --cache) and unetpp.tune grids the seeds post-processing on
them, scoring each point against the original per-nucleus masks:

    objective = mAP - 0.25 x count miss (sum over images of |predicted - true| / true nuclei: phantoms on one
    image do not make up for misses on another), each grid point rated with its neighbours (flat beats sharp).

Reported: the model's own setting, the flat choice and the sharp optimum, each with its spread over four stratified
folds, per modality, the false positives at IoU 0.5; and the cross-validated choice (chosen without each fold,
scored on it). `--write OUT.pt` writes the choice into a copy of the checkpoint's metadata (unetpp.tune.write_choice;
bench/ship_instance.py does the same from this script's JSON).

    python bench/instance_select.py [--model instance] --out bench/results/instance_select.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import unetpp
from unetpp import tune
from unetpp.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from unetpp.bench.machine import describe_machine
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.data.selection import shipped_selection_path
from unetpp.eval.modality import MODALITIES
from unetpp.model.sources import SHIPPED_MODELS
from unetpp.predict.seeds import SeedParams


def kept_outputs(model_name: str, ids: list[str], root: Path, cache: Path | None, **load_args) -> tuple[list, dict]:
    """The selection images' kept outputs through unetpp.load(model).predict_many (or the cache of them)."""
    if cache and cache.is_file():
        stored = pickle.loads(cache.read_bytes())
        if stored["ids"] == ids and stored["load"] == {"model": model_name, **load_args}:
            return stored["kept"], stored["info"]
    images, truths = tune.read_dsb2018(root, ids)
    t0 = time.perf_counter()
    with unetpp.load(model_name, **load_args) as model:
        info = {"runtime": model.info.get("runtime"), "backend": model.info.get("backend"),
                "model_file": str(model.info.get("model", model_name))}
        kept = tune.keep_outputs(model, images, truths, ids)
    info["predict_s"] = round(time.perf_counter() - t0, 1)
    if cache:
        write_bytes_atomic(cache, pickle.dumps({"ids": ids, "load": {"model": model_name, **load_args},
                                                "kept": kept, "info": info}))
    return kept, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="instance", help="shipped name or checkpoint (default: the shipped one)")
    ap.add_argument("--precision", choices=("fp32", "int8"), default=None, help="default: the default runtime")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--ids", type=Path, default=None, help="ids file (default: the shipped selection set)")
    ap.add_argument("--grid", default=None, help="JSON {param: [values]} (default: unetpp.tune.GRID)")
    ap.add_argument("--variant", action="append", default=[],
                    help="JSON seed parameters over the flat choice, scored beside it (e.g. the phantom filters)")
    ap.add_argument("--cache", type=Path, default=None, help="a pickle of the kept outputs (reused if it matches)")
    ap.add_argument("--write", type=Path, default=None, help="write the choice into a copy of the checkpoint")
    ap.add_argument("--workers", type=int, default=1, help="processes scoring the grid")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    ids = read_ids(args.ids or shipped_selection_path())
    load_args = {k: v for k, v in (("precision", args.precision), ("backend", args.backend)) if v}
    kept, info = kept_outputs(args.model, ids, resolve_data_dir(), args.cache, **load_args)
    ckpt = Path(SHIPPED_MODELS.get(args.model, args.model))
    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.model.metadata import predict_facts

    # the setting `unetpp predict` applies: a checkpoint's seed_params only where recorded as chosen (`selection`)
    own = SeedParams.from_dict(predict_facts(load_checkpoint(ckpt).meta).get("seed_params") or {})
    t0 = time.perf_counter()
    grid = json.loads(args.grid) if args.grid else tune.GRID
    scores = tune.grid_scores(kept, grid, own, workers=args.workers)
    result = {"command": "python " + " ".join(sys.argv), "ids": str(args.ids or "shipped selection"),
              "n": len(ids), "model": str(ckpt), **info, "machine": describe_machine(),
              "own_setting": tune.score_setting(kept, own), "chosen": tune.choose(scores, current=own),
              "grid_s": round(time.perf_counter() - t0, 1),
              "scales": {k.id: k.scale for k in kept}}
    chosen = SeedParams.from_dict(result["chosen"]["params"])
    result["variants"] = {v: tune.score_setting(kept, SeedParams(**{**chosen.to_dict(), **json.loads(v)}))
                          for v in args.variant}
    write_json_atomic(args.out, result)
    write_text_atomic(args.out.with_suffix(".md"), markdown(result))
    if args.write and not result["chosen"].get("better", True):
        print(f"not written: the choice does not beat the model's own setting on {len(ids)} images")
    elif args.write:
        tune.write_choice(ckpt, result["chosen"], args.write,
                          {"report": str(args.out), "ids": str(args.ids or "src/unetpp/data/splits/selection_ids.txt"),
                           "through": f"unetpp.tune on unetpp.load({args.model!r}) runtime {info['runtime']}"})
    print(json.dumps({k: result[k]["all"] for k in ("own_setting", "chosen")}, indent=1))


def _row(name: str, r: dict) -> str:
    a, spread = r["all"], r["fold_spread"]
    mods = " / ".join(f"{r['modality'][m]['map']:.3f}" if m in r["modality"] else "-" for m in MODALITIES)
    return (f"| {name} | {a['objective']:.4f} ({spread['objective'][0]:.3f}–{spread['objective'][1]:.3f}) | "
            f"{a['map']:.4f} ({spread['map'][0]:.3f}–{spread['map'][1]:.3f}) | {a['ap50']:.4f} | "
            f"{a['n_pred']} / {a['n_true']} ({a['count_error']:+.1%}, miss {a['count_miss']:.1%}) | "
            f"{a['false_positives_iou50']} | {mods} |")


def markdown(result: dict) -> str:
    chosen = result["chosen"]
    cross = chosen["cross_validated"]
    lines = ["# Post-processing chosen on the selection set through the product path (unetpp.tune)", "",
             f"`{result['command']}`", "",
             f"{result['n']} selection ids (train ids the model never trained on), predicted once by "
             f"`unetpp.load({Path(result['model']).name!r}).predict_many` on `{result['runtime']}` "
             f"({result['predict_s']} s), the grid scored on the kept outputs ({result['grid_s']} s); "
             f"machine: {result['machine'].get('cpu', '?')}. Objective = mAP - {chosen['count_weight']} x count "
             f"miss (sum over images of |predicted - true| / true nuclei); brackets: min–max over "
             f"{len(chosen['folds'])} stratified folds; FP@0.5: predicted nuclei "
             "matching no true one at IoU 0.5; mAP per modality fluorescence / brightfield / stained.", "",
             "| setting | objective | mAP | AP@0.5 | nuclei (count error) | FP@0.5 | mAP per modality |",
             "|---|---:|---:|---:|---:|---:|---|",
             _row("the model's own setting", result["own_setting"]), _row("flat choice (rated with neighbours)",
                                                                          chosen)]
    lines += [_row(f"flat choice + `{v}`", r) for v, r in result.get("variants", {}).items()]
    lines += ["", "FP@0.5 per modality (fluorescence / brightfield / stained): " + "; ".join(
        f"{name} " + " / ".join(str(r["modality"][m]["false_positives_iou50"]) if m in r["modality"] else "-"
                                for m in MODALITIES)
        for name, r in [("own", result["own_setting"]), ("chosen", chosen), *result.get("variants", {}).items()])
              + "."]
    sharp = chosen["sharp"]
    if "current" in chosen:
        cur = chosen["current"]
        lines += ["", f"The model's own setting on the grid: rating {cur['rating']:.4f}, objective "
                  f"{cur['objective']:.4f}; the flat choice {'beats' if chosen['better'] else 'does not beat'} it."]
    lines += ["", f"Flat choice: `{json.dumps(chosen['params'])}` (rating {chosen['rating']:.4f}).",
              f"Sharp optimum: `{json.dumps(sharp['params'])}` objective {sharp['objective']:.4f}, mAP "
              f"{sharp['map']:.4f}, count error {sharp['count_error']:+.1%} (rating {sharp['rating']:.4f}).", "",
              "Cross-validated (chosen on the other folds, scored on this one): objective " +
              ", ".join(f"{c['objective']:.3f}" for c in cross) + "; mAP " +
              ", ".join(f"{c['map']:.3f}" for c in cross) + "; choices " +
              "; ".join(f"`{json.dumps(c['params'])}`" for c in cross) + ".", "",
              f"Grid: `{json.dumps(chosen['grid'])}`."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
