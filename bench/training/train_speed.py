"""Instance-training throughput on this CPU: crops/s of the real training step (crop cutting and augmentation,
forward, loss, backward, Adam step) before and after the speed options, interleaved in one run.

Configurations (each a fresh model from the shipped instance weights, the same crops):
- before: the shipped model's runs (1 torch thread, NCHW, crops made in the training thread), crop 96, batch 16;
- after:  2 threads, channels-last, 2 batches prefetched by a thread; same crop, batch, recipe;
- after+compile: the same with torch.compile (first call excluded);
- long-run: the shipped instance recipe (crop 128, batch 8, deep supervision, v2 augmentation), crops/s and px/s.
Each round runs every configuration for --steps steps after one warm-up step; the figure is the median over
rounds. The data-only rate (crops cut + augmented per second, one thread) is measured apart.

    python bench/training/train_speed.py [--rounds 3] [--steps 4] [--limit 48] [--configs before,after,...]
Writes bench/results/train_speed.{json,md}. Pause other heavy work first (e.g. `kill -STOP` a training run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.bench.provenance import provenance, repo_root
from unetpp.config import PreprocessConfig
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.model.resolve import shipped_checkpoint
from unetpp.train.instance_data import InstanceCropDataset, build_instance_data, crops_per_image
from unetpp.train.instance_loop import TrainSpeed, _train_epoch, appearance_params
from unetpp.train.instance_model import ChannelBCEDice, InstanceTrainConfig, init_instance_model
from unetpp.train.sampling import EpochBatchSampler

RESULTS = repo_root(__file__) / "bench" / "results"
CONFIGS = {
    "before": (InstanceTrainConfig(crop=96, batch_size=16), 1, TrainSpeed()),
    "after": (InstanceTrainConfig(crop=96, batch_size=16), 2, TrainSpeed(channels_last=True, prefetch=2)),
    "after+compile": (InstanceTrainConfig(crop=96, batch_size=16), 2,
                      TrainSpeed(channels_last=True, prefetch=2, compile=True)),
    "long-run": (InstanceTrainConfig(crop=128, batch_size=8, deep_supervision=True, augment_preset="v2",
                                     crop_area=65536, crop_nuclei=40), 2, TrainSpeed(channels_last=True, prefetch=2)),
}


class Setup:
    def __init__(self, name: str, data, init: Path) -> None:
        cfg, self.threads, self.speed = CONFIGS[name]
        self.cfg, self.name = cfg, name
        self.model = init_instance_model(str(init), cfg.seed, cfg.deep_supervision)
        if self.speed.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-5)
        self.crit = ChannelBCEDice(cfg.border_weight)
        self.forward = torch.compile(self.model) if self.speed.compile else self.model
        self.dataset = InstanceCropDataset(data, cfg.seed, cfg.crop, cfg.jitter, appearance_params(cfg, None),
                                           PreprocessConfig(size=cfg.crop),
                                           crops=crops_per_image(data, cfg.crop_area, 16, cfg.crop_nuclei))
        self.epoch = 0

    def run(self, steps: int) -> float:
        """Seconds for `steps` training steps (fresh crops each call)."""
        torch.set_num_threads(self.threads)
        sampler = EpochBatchSampler(min(len(self.dataset), steps * self.cfg.batch_size), self.cfg.batch_size,
                                    self.cfg.seed)
        sampler.set_epoch(self.epoch)
        self.epoch += 1
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=0)
        t0 = time.perf_counter()
        _train_epoch(self.model, loader, self.crit, self.opt, torch.device("cpu"), self.name, False, self.forward,
                     None, self.speed)
        return time.perf_counter() - t0


def data_rate(data, n: int = 64) -> dict[str, float]:
    out = {}
    for preset, crop in (("v1", 96), ("v2", 128)):
        cfg = replace(InstanceTrainConfig(), crop=crop, augment_preset=preset)
        ds = InstanceCropDataset(data, 1, crop, cfg.jitter, appearance_params(cfg, None), PreprocessConfig(size=crop))
        t0 = time.perf_counter()
        for k in range(n):
            ds[(0, k % len(ds))]
        out[f"{preset}_crop{crop}_crops_per_s"] = round(n / (time.perf_counter() - t0), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--limit", type=int, default=48, help="train ids whose crops are used")
    ap.add_argument("--configs", default="before,after,after+compile,long-run")
    args = ap.parse_args()
    names = args.configs.split(",")
    root = resolve_data_dir(args.data)
    ids = read_ids(root / "train_ids.txt")[: args.limit]
    data = build_instance_data(root / "stage1_train", ids, progress=False)
    init = shipped_checkpoint("instance")
    setups = {n: Setup(n, data, init) for n in names}
    load_before = os.getloadavg()
    drate = data_rate(data)
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # warm-up (compile happens here)
        setups[n].run(1)
    for r in range(args.rounds):
        for n in names:
            s = setups[n]
            t = s.run(args.steps)
            times[n].append(t)
            print(f"round {r + 1} {n}: {args.steps * s.cfg.batch_size / t:.2f} crops/s", flush=True)
    rows = {}
    for n in names:
        s = setups[n]
        crops = args.steps * s.cfg.batch_size
        med = statistics.median(times[n])
        rows[n] = {"crop": s.cfg.crop, "batch": s.cfg.batch_size, "threads": s.threads,
                   "channels_last": s.speed.channels_last, "prefetch": s.speed.prefetch, "compile": s.speed.compile,
                   "deep_supervision": s.cfg.deep_supervision, "augment": s.cfg.augment_preset,
                   "crops_per_s": round(crops / med, 3), "kpx_per_s": round(crops * s.cfg.crop ** 2 / med / 1e3, 1),
                   "crops_per_s_rounds": [round(crops / t, 3) for t in times[n]]}
    base = rows.get("before", {}).get("crops_per_s")
    result = {**provenance(load_before), "load_before": load_before,
              "load_after": os.getloadavg(), "rounds": args.rounds, "steps": args.steps, "data_only": drate,
              "configs": rows}
    write_json_atomic(RESULTS / "train_speed.json", result)
    lines = ["# Instance training throughput (crops/s of the whole training step)", "",
             f"`{result['command']}`; {args.rounds} interleaved rounds of {args.steps} steps, medians; load average "
             f"before {load_before[0]:.2f}, after {result['load_after'][0]:.2f}. Machine: "
             f"{result['machine'].get('cpu', '')}.", "",
             "| config | crop | batch | threads | channels-last | prefetch | compile | DS | aug | crops/s | "
             "kpx/s | vs before |", "|---|---:|---:|---:|---|---:|---|---|---|---:|---:|---:|"]
    for n, r in rows.items():
        ratio = f"{r['crops_per_s'] / base:.2f}x" if base else ""
        lines.append(f"| {n} | {r['crop']} | {r['batch']} | {r['threads']} | {r['channels_last']} | {r['prefetch']} "
                     f"| {r['compile']} | {r['deep_supervision']} | {r['augment']} | {r['crops_per_s']:.2f} | "
                     f"{r['kpx_per_s']:.0f} | {ratio} |")
    lines += ["", "Data only (one thread, crops cut + augmented + normalised per second): "
              + ", ".join(f"{k} {v}" for k, v in drate.items())]
    write_text_atomic(RESULTS / "train_speed.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
