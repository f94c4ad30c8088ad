"""Fast by default, in one run on the 134 val ids: today's default (the previous instance model, ONNX
Runtime fp32, 96x96 windows) against the new default (int8 OpenVINO, verified; whole images or large windows; the
model's default depth) and the UNet++ depth table (each depth in fp32, and int8 at depths 3 and 4).

    python bench/speed/fast_default.py --previous PREVIOUS_INSTANCE.pt [--data data/dsb2018] [--threads 2]

Each row is `unetpp predict` then `unetpp evaluate --instances` (unetpp.bench.product_runs.predict_and_score);
images/s is predict_summary.json's end-to-end rate. The int8 builds (and their accuracy checks on train images) are
made first in a fresh model cache, so no row pays for them. Per depth: parameters and GFLOPs per megapixel of network
input (torch's FLOP counter, multiply-adds x 2). Writes bench/results/fast_default.{json,md} with the machine, the load
average and the commands. Nothing is chosen here: the default depth was chosen on the selection set
(bench/results/instance_select_depth*.json); val only reports.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from unetpp.bench.product_runs import choose_in_subprocess, predict_and_score
from unetpp.bench.provenance import provenance, repo_root

ROOT = repo_root(__file__)

RESULTS = ROOT / "bench" / "results"


def rows(previous: Path) -> dict[str, list[str]]:
    out = {"today: previous model, ORT fp32, 96x96 windows": ["--model", str(previous), "--precision", "fp32",
                                                              "--window", "96"]}
    for d in (4, 3, 2, 1):
        out[f"fp32, depth {d}"] = ["--precision", "fp32", "--depth", str(d)]
    out["int8, depth 4"] = ["--depth", "4"]
    out["new default (no flags)"] = []
    return out


def network_costs() -> dict[int, dict[str, float]]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.model.network import PrunedNestedUNet, parameters_at_depth
    from unetpp.model.resolve import shipped_checkpoint

    net = load_checkpoint(shipped_checkpoint("instance")).model.eval()
    costs = {}
    for d in (1, 2, 3, 4):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            PrunedNestedUNet(net, d)(torch.zeros(1, 3, 256, 256))
        costs[d] = {"parameters": parameters_at_depth(net, d),
                    "gflops_per_mpx": round(counter.get_total_flops() / (256 * 256) * 1e6 / 1e9, 1)}
    return costs


def default_depth_of_shipped() -> int:
    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.model.depth import default_depth
    from unetpp.model.resolve import shipped_checkpoint

    path = shipped_checkpoint("instance")
    return default_depth(load_checkpoint(path).meta, path)


def build(depth: int, threads: int, env: dict[str, str]) -> dict:
    selection, seconds = choose_in_subprocess(env, threads, depth, cwd=ROOT)
    return {"depth": depth, "seconds": seconds, "selection": selection}


def markdown(doc: dict) -> str:
    m, load = doc["machine"], doc["load_average"]
    lines = ["# Fast by default: today's default vs the new one, and UNet++ depth (134 val ids, full resolution)",
             "", f"{m.get('cpu')} ({m.get('usable_cores')} cores; 1-min load average {load['start'][0]} at the "
             f"start, {load['end'][0]} at the end), {doc['date']}, `{doc['command']}`. Each row: `unetpp predict` "
             "(the shipped instance model unless said) then `unetpp evaluate --instances`; images/s = predict's "
             "end-to-end rate (reading, first pass, network, seeds and watershed, writing).", "",
             "| row | runtime | depth | parameters | GFLOPs / Mpx | mAP | AP@0.5 | pixel IoU | nuclei / 5,698 | "
             "images/s | vs today |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = next(iter(doc["results"].values()))["images_per_s"] or 1.0
    for name, r in doc["results"].items():
        sel = r.get("selection") or {}
        own = 4 if " --model " in r["command"] else doc.get("default_depth", 4)  # the previous model: no heads
        d = sel.get("depth") or r.get("depth") or own  # None: the model's own default
        cost = doc["costs"].get(str(d), {})  # the previous model (no heads): the same network as depth 4
        what = f"{sel.get('runtime', r['backend'])} {sel.get('precision', '')}".strip()
        lines.append(f"| {name} | {what} | {d} | {cost.get('parameters', '')} | "
                     f"{cost.get('gflops_per_mpx', '')} | {r['map']:.4f} | {r['ap_50']:.4f} | {r['pixel_iou']:.4f} | "
                     f"{r['n_pred']:,} | {r['images_per_s'] or 0:.2f} | {(r['images_per_s'] or 0) / base:.2f}x |")
    lines += ["", "One-time builds (first use of each depth, then cached; int8 calibrated and checked on the shipped "
              "train images):"]
    for b in doc["builds"]:
        s = b["selection"]
        lines.append(f"- depth {b['depth']}: {b['seconds']:.0f} s -> {s.get('runtime')} {s.get('precision')}, "
                     f"verified {s.get('verified')}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--previous", type=Path, required=True, help="the previous shipped instance checkpoint")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "fast_default")
    a = ap.parse_args()
    from unetpp.atomic import write_json_atomic, write_text_atomic

    env = {**os.environ, "UNETPP_CACHE": str(a.out / f"cache-{time.strftime('%Y%m%d-%H%M%S')}")}
    env.pop("UNETPP_DEFAULT_RUNTIME", None)
    load_before = os.getloadavg()
    costs = network_costs()
    builds = [build(d, a.threads, env) for d in (4, 3)]
    print("builds:", [(b["depth"], b["seconds"], b["selection"].get("precision")) for b in builds], flush=True)
    results = {}
    for k, (name, extra) in enumerate(rows(a.previous).items()):
        results[name] = r = predict_and_score(a.data, a.out / f"row{k}", extra, env, a.threads, ROOT)
        r["depth"] = int(extra[extra.index("--depth") + 1]) if "--depth" in extra else None
        print(f"{name}: mAP {r['map']:.4f}  {r['n_pred']}/{r['n_true']}  {r['images_per_s']:.2f} img/s", flush=True)
    doc = {"results": results, "builds": builds, "costs": {str(k): v for k, v in costs.items()},
           "default_depth": default_depth_of_shipped(), **provenance(load_before)}
    write_json_atomic(RESULTS / "fast_default.json", doc)
    write_text_atomic(RESULTS / "fast_default.md", markdown(doc))


if __name__ == "__main__":
    main()
