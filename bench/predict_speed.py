"""`unetpp predict` before and after per-image windows, in one run on the val ids at full resolution.

    python bench/predict_speed.py --data data/dsb2018 [--runtime onnxruntime] [--precision fp32] [--threads 2]
    python bench/predict_speed.py --runtime openvino --model runs/instance_rt/instance_int8.xml --precision int8

Two variants of the default instance model (scale rule nuclei@150, seeds + watershed), same runtime:
- `today`: the fixed-size protocol (windows of the model's own training size, 96 or 128, at 25 % overlap, Hann
  blend). With ONNX Runtime / OpenVINO it runs a fixed-size export of the model (what `predict` ran before free
  height/width), with torch `--window` = the model's own size;
- `windows`: the per-image windows (predict.tiling.plan_windows: the whole scaled image padded to 16 up to 1 Mpx,
  else stitched windows of up to 512 px).
Per variant: end-to-end images/s of `predict_paths` (reading, first pass, windows, seeds, writing; warm-up
excluded), the runtime's compute-only rate on the very same network inputs (each image prepared untimed, then its
units run in the driver's batches: one shape per batch, `--batch` units), computed-to-output pixel ratio (window
areas over scaled-image pixels), val mAP / AP@0.5 / pixel IoU / nuclei predicted (eval.instance_eval).
Seams: the maximum probability difference (both output channels, at the model's scale) between the blended windows
and a single whole-image pass of the free-size model: on every image the automatic plan windows, and on the
`--seam-images` largest scaled images with windows forced to `--seam-window` px (and for today's fixed windows).
Results accumulate in bench/results/predict_speed.json under `--label` (default RUNTIME_PRECISION; a label run
again replaces its entry); predict_speed.md is rewritten from all entries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _runtime(model: str | Path, a: argparse.Namespace) -> Any:
    from unetpp.runtimes import open_runtime

    rt = open_runtime(model, backend=a.runtime, threads=a.threads)
    rt.first_pass_model = a.first_pass  # None: the shipped fp32 guide model
    return rt


def fixed_size_model(a: argparse.Namespace) -> Path | str:
    """Today's model file for this runtime: the instance checkpoint exported with fixed H/W (its own size; ONNX,
    which the IR runtime reads too); the torch runtime runs the checkpoint itself (with --window = its size)."""
    if a.runtime == "torch":
        return a.model
    if a.baseline_model:
        return a.baseline_model
    from unetpp.model.export import export_onnx
    from unetpp.model.resolve import model_source

    out = a.out / "instance_fixed_size.onnx"
    if not out.is_file():
        export_onnx(model_source("instance"), out, dynamic_size=False)
    return out


def _checkpoint_sha(model: str) -> str | None:
    """The SHA-256 of the checkpoint behind `--model` (a shipped name or a .pt), None for another kind of file."""
    from unetpp.atomic import file_sha256
    from unetpp.model.resolve import model_source

    path = model_source(model)
    return file_sha256(path) if path.suffix in (".pt", ".pth") else None


def today_options(a: argparse.Namespace) -> Any:
    """Today's options: the fixed-size export plans its own windows; the torch runtime (free size) is told its
    own size as the window."""
    from unetpp.predict.image import PredictOptions

    if a.runtime != "torch":
        return PredictOptions(batch=a.batch)
    rt = _runtime(a.model, a).activate()
    own = int(rt.input_shape[-1])
    rt.deactivate()
    return PredictOptions(batch=a.batch, window=own)


def items_for(a: argparse.Namespace, ids: list[str]) -> list[Any]:
    from unetpp.predict.work import PredictItem

    return [PredictItem(i, path=a.data / "stage1_train" / i / "images" / f"{i}.png") for i in ids]


def end_to_end(name: str, model: Any, options: Any, a: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    from unetpp.predict.folder import predict_paths

    rt = _runtime(model, a)
    out = a.out / name
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = predict_paths([a.data / "stage1_train"], out, rt, options, ids=ids, progress=False, overwrite=True,
                      resume=False)
    wall = time.perf_counter() - t0
    recs = s["images"]
    computed = sum(int(r["computed_px"]) for r in recs if r.get("computed_px"))
    output = sum(int(r["output_px"]) for r in recs if r.get("output_px"))
    return {"out": str(out), "images_per_s": s["images_per_s"], "wall_s": round(wall, 2),
            "driver_wall_s": s["timing"]["wall_s"], "n_units": s["timing"]["n_units"],
            "mean_batch": s["timing"]["mean_batch"], "throughput_compute_in_run": s["timing"]["throughput_compute"],
            "computed_px": computed, "output_px": output, "pixel_ratio": computed / output,
            "nuclei": s["nuclei_total"], "n_failed": s["n_failed"], "runtime": s["settings"]["runtime"],
            "load_avg_1min_start": round(load0, 2), "load_avg_1min_end": round(os.getloadavg()[0], 2),
            "windows": _window_counts(recs)}


def _window_counts(recs: list[dict[str, Any]]) -> dict[str, int]:
    whole = sum(1 for r in recs if r.get("n_tiles") == 1)
    return {"images_in_one_window": whole, "images_in_several": len(recs) - whole,
            "windows": sum(int(r.get("n_tiles") or 0) for r in recs)}


def _work(rt: Any, options: Any) -> Any:
    from unetpp.predict.work import work_for

    return work_for(rt.activate(), options)


def compute_only(model: Any, options: Any, a: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    """The runtime alone on the same inputs: every image prepared (untimed), its units batched as the driver does
    (consecutive units, `batch` at most, one shape per batch), only the runtime calls timed (first call excluded)."""
    rt = _runtime(model, a).activate()
    work = _work(rt, options)
    pending: list[np.ndarray] = []
    timed: list[float] = []
    warm = [False]
    first_s: list[float] = []  # the scale rule's first-pass runtime calls (the guide model), timed apart
    fp = work._first_pass
    if fp is not None:
        call = fp.infer_padded

        def timed_call(x: np.ndarray) -> Any:
            t0 = time.perf_counter()
            out = call(x)
            first_s.append(time.perf_counter() - t0)
            return out

        fp.infer_padded = timed_call

    def run() -> None:
        if not pending:
            return
        x = pending[0] if len(pending) == 1 else np.concatenate(pending)
        pending.clear()
        if not warm[0]:
            rt.infer_padded(x)
            warm[0] = True
        t0 = time.perf_counter()
        rt.infer_padded(x)
        timed.append(time.perf_counter() - t0)

    n_units = 0
    for item in items_for(a, ids):
        _, chunks = work.prepare(item)
        for chunk in chunks:
            for u in chunk:
                if pending and pending[0].shape[1:] != u.shape:
                    run()
                pending.append(u[None])
                n_units += 1
                if len(pending) == options.batch:
                    run()
    run()
    total = sum(timed)
    first = sum(first_s[1:])  # its first call (warm-up) excluded
    rt.deactivate()
    return {"compute_s": round(total, 2), "images_per_s": len(ids) / total, "units": n_units, "calls": len(timed),
            "first_pass_s": round(first, 2), "first_pass_calls": max(0, len(first_s) - 1),
            "images_per_s_all_networks": len(ids) / (total + first)}


def _probs(work: Any, rt: Any, item: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """(C, sh, sw) probabilities at the model's scale through the work's own windows and blending."""
    state, chunks = work.prepare(item)
    start = 0
    for chunk in chunks:
        y, _ = rt.infer_padded(chunk)
        work.accept(state, start, y)
        start += chunk.shape[0]
    sh, sw = state["small_shape"]
    prob = state["blender"].result(sh, sw)
    return (prob if prob.ndim == 3 else prob[None]), state


def _whole(state: dict[str, Any], work: Any, rt: Any) -> np.ndarray:
    """The single whole-image pass: the scaled image padded to multiples of 16, one network call."""
    import cv2

    from unetpp.eval.metrics import sigmoid
    from unetpp.predict.tiling import pad_to, round_up

    img = state["img"]
    sh, sw = state["small_shape"]
    small = img if (sh, sw) == img.shape[:2] else cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)
    padded = pad_to(small, round_up(sh, 16), round_up(sw, 16))
    y, _ = rt.infer_padded(work.normalizer(padded)[None])
    return sigmoid(np.asarray(y, np.float32))[0][:, :sh, :sw]


def seams(model: Any, fixed: Any, a: argparse.Namespace, ids: list[str], e2e_dir: Path) -> dict[str, Any]:
    """Max |p_windows - p_whole| where the automatic plan windows, and on the largest images with windows forced to
    --seam-window px and with today's fixed-size windows (fixed export)."""
    from unetpp.predict.image import PredictOptions

    rt = _runtime(model, a).activate()
    auto = _work(rt, PredictOptions())
    forced = _work(rt, PredictOptions(window=a.seam_window))
    rt96 = _runtime(fixed, a).activate()
    today = _work(rt96, today_options(a))
    summary = json.loads((e2e_dir / "predict_summary.json").read_text())
    by_stem = {r["stem"]: r for r in summary["images"]}
    several = [i for i in ids if (by_stem.get(i) or {}).get("n_tiles", 1) > 1]
    largest = sorted(ids, key=lambda i: -int((by_stem.get(i) or {}).get("output_px") or 0))[:a.seam_images]
    items = {it.stem: it for it in items_for(a, sorted(set(several) | set(largest)))}
    out: dict[str, Any] = {"seam_window": a.seam_window, "auto_windowed_images": several,
                           "largest_images": largest}

    def measure(work: Any, r: Any, stems: list[str]) -> dict[str, Any]:
        diffs, flips, px = [], 0, 0
        for stem in stems:
            p, state = _probs(work, r, items[stem])
            whole = _whole(state, auto, rt)
            d = np.abs(p - whole)
            diffs.append(float(d.max()))
            flips += int(np.count_nonzero((p[0] >= 0.5) != (whole[0] >= 0.5)))
            px += int(p[0].size)
        return {"n_images": len(stems), "max_abs_diff": max(diffs) if diffs else None,
                "median_of_image_max": float(np.median(diffs)) if diffs else None,
                "fg_decisions_flipped": flips, "fg_decision_share": flips / px if px else None}

    out["auto"] = measure(auto, rt, several)
    out["forced"] = measure(forced, rt, largest)
    out["today_96"] = measure(today, rt96, largest)
    return out


def evaluate(pred_dir: str, a: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    from unetpp.eval.instance_eval import evaluate_instances

    r = evaluate_instances(pred_dir, a.data, ids)
    return {k: r[k] for k in ("map", "ap_50", "ap_75", "pixel_iou", "n_pred", "n_true")}


def _all_networks(v: dict[str, Any]) -> str:
    rate = v["compute_only"].get("images_per_s_all_networks")
    return f"{100 * v['e2e']['images_per_s'] / rate:.0f} %" if rate else "-"


def table(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = ["# `unetpp predict`: fixed-size windows vs per-image windows, 134 val ids, full resolution", "",
             f"{m['cpu']} ({m['usable_cores']} usable cores, shared with other jobs: 1-minute load average at the "
             "start/end of each run in the JSON). The default instance model (nuclei@150, seeds + watershed). "
             "Commands: the `command` of each entry.", "",
             "- **e2e images/s**: `predict_paths` end to end (read, first pass, windows, seeds, writing; after "
             "warm-up); **compute-only**: the same runtime on the same network inputs, nothing else (driver "
             "batches, calls timed); **e2e / compute**: the share of the runtime's rate the pipeline keeps; "
             "**e2e / all networks**: the same against the runtime calls plus the scale rule's first pass (the "
             "guide model's calls, timed the same way; entries from before 2026-12-04 19:50 did not time it);",
             "- **pixel ratio**: pixels the network computes (window areas) over the scaled images' pixels;",
             "- **seam max diff**: max |probability| difference to a single whole-image pass (both channels, "
             "model scale).", "",
             "| entry | variant | e2e images/s | compute-only images/s | e2e / compute | e2e / all networks "
             "| pixel ratio | windows | mAP | AP@0.5 | pixel IoU | nuclei / true |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, e in doc["entries"].items():
        for name in ("today", "windows"):
            v = e["variants"].get(name)
            if not v:
                continue
            ev, co = v["eval"], v["compute_only"]
            lines.append(f"| {label} | {name} | {v['e2e']['images_per_s']:.3f} | {co['images_per_s']:.3f} | "
                         f"{100 * v['e2e']['images_per_s'] / co['images_per_s']:.0f} % | {_all_networks(v)} | "
                         f"{v['e2e']['pixel_ratio']:.3f} | {v['e2e']['n_units']} | {ev['map']:.4f} | "
                         f"{ev['ap_50']:.4f} | {ev['pixel_iou']:.4f} | {ev['n_pred']:,} / {ev['n_true']:,} |")
        t, w = e["variants"].get("today"), e["variants"].get("windows")
        if t and w:
            lines.append(f"| {label} | speed-up | {w['e2e']['images_per_s'] / t['e2e']['images_per_s']:.2f}x | "
                         f"{w['compute_only']['images_per_s'] / t['compute_only']['images_per_s']:.2f}x | | | | | "
                         f"{w['eval']['map'] - t['eval']['map']:+.4f} | | | |")
    lines += ["", "Seams against a single whole-image pass (max |p| difference; foreground decisions at 0.5 that "
              "differ):", "", "| entry | windows | images | max diff | median of per-image max | fg flips (share) |",
              "|---|---|---:|---:|---:|---:|"]
    for label, e in doc["entries"].items():
        s = e.get("seams") or {}
        for key, what in (("auto", "automatic plan, where it windows"),
                          ("forced", f"forced {s.get('seam_window')} px stitched, largest images"),
                          ("today_96", "today's fixed-size Hann blend, same images")):
            r = s.get(key)
            if not r:
                continue
            if not r["n_images"]:
                lines.append(f"| {label} | {what} | 0 | - | - | - |")
                continue
            lines.append(f"| {label} | {what} | {r['n_images']} | {r['max_abs_diff']:.4f} | "
                         f"{r['median_of_image_max']:.4f} | {r['fg_decisions_flipped']} "
                         f"({100 * r['fg_decision_share']:.4f} %) |")
    lines += ["", "Run dates: " + ", ".join(f"{k} {e['date']}" for k, e in doc["entries"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--ids", type=Path, default=None, help="default: DATA/val_ids.txt")
    ap.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "openvino", "torch"))
    ap.add_argument("--model", default="instance", help="the free-size model (default: the shipped instance "
                    "model; ONNX Runtime/OpenVINO use its free-size ONNX export; an int8 .xml/.onnx from compile)")
    ap.add_argument("--baseline-model", default=None, help="today's fixed-size model file (default: exported here)")
    ap.add_argument("--precision", default="fp32", help="a label for the model's precision (fp32, int8, ...)")
    ap.add_argument("--label", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--variants", default="today,windows")
    ap.add_argument("--seam-window", type=int, default=256)
    ap.add_argument("--seam-images", type=int, default=16)
    ap.add_argument("--skip-seams", action="store_true")
    ap.add_argument("--first-pass", type=Path, default=None, help="the guide model file of the nuclei rule's first "
                    "pass (the default runtime's int8 build: compile/first_pass.py); default: the shipped fp32 one")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "predict_speed")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where predict_speed.{json,md} go")
    a = ap.parse_args()
    from unetpp.atomic import write_json_atomic, write_text_atomic
    from unetpp.bench.machine import describe_machine
    from unetpp.predict.image import PredictOptions

    a.out.mkdir(parents=True, exist_ok=True)
    ids = (a.ids or a.data / "val_ids.txt").read_text().split()
    label = a.label or f"{a.runtime}_{a.precision}"
    fixed = fixed_size_model(a)
    specs = {"today": (fixed, today_options(a)),
             "windows": (a.model, PredictOptions(batch=a.batch))}
    entry: dict[str, Any] = {"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
                             "date": time.strftime("%Y-%m-%d %H:%M"), "runtime": a.runtime,
                             "precision": a.precision, "threads": a.threads, "batch": a.batch, "n_ids": len(ids),
                             "model": str(a.model), "baseline_model": str(fixed), "variants": {},
                             "checkpoint_sha256": _checkpoint_sha(a.model)}
    for name in a.variants.split(","):
        model, opts = specs[name]
        e2e = end_to_end(name, model, opts, a, ids)
        print(f"{name}: {e2e['images_per_s']:.3f} images/s end to end, pixel ratio {e2e['pixel_ratio']:.3f}, "
              f"{e2e['nuclei']} nuclei", flush=True)
        co = compute_only(model, opts, a, ids)
        print(f"{name}: compute only {co['images_per_s']:.3f} images/s", flush=True)
        ev = evaluate(e2e["out"], a, ids)
        print(f"{name}: mAP {ev['map']:.4f}, {ev['n_pred']} nuclei", flush=True)
        entry["variants"][name] = {"e2e": e2e, "compute_only": co, "eval": ev, "options": opts.to_dict()}
    if not a.skip_seams:
        entry["seams"] = seams(a.model, fixed, a, ids, a.out / "windows")
        print(f"seams: {json.dumps({k: v for k, v in entry['seams'].items() if isinstance(v, dict)})}", flush=True)
    path = a.results / "predict_speed.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc.setdefault("entries", {})[label] = entry
    doc["machine"] = describe_machine()
    write_json_atomic(path, doc)
    write_text_atomic(a.results / "predict_speed.md", table(doc))
    print(table(doc))


if __name__ == "__main__":
    main()
