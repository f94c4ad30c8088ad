"""Whole-process comparison: `unetpp infer` against the PyTorch eager loop a user would write, same inputs.

Each variant is a fresh process timed from start to exit (interpreter start, imports, model load, reading every
input, inference, writing one output per input), run --repeats times round-robin; the table gives medians and the
ratio eager / variant. The outputs of every variant are checked against the eager loop's (max |diff| of logits,
share of pixels whose > 0.5 decision differs), so a fast but wrong variant shows.

    python bench/speed/infer_vs_eager.py --inputs runs/b4/val --model runs/b4/model.onnx \
        --variant ov-int8=openvino:runs/b4/ov_int8.xml --out bench/results/infer_vs_eager_cpu
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unetpp.atomic import ensure_dir, write_json_atomic, write_text_atomic
from unetpp.bench.provenance import provenance

# The eager loop: what a user writes with the model class and the checkpoint; batches of --batch in sorted order.
EAGER_LOOP = """
import sys, pathlib, numpy as np, torch
from unetpp.model.checkpoint import load_checkpoint
inputs, out, bs, threads, ckpt = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), \\
    int(sys.argv[4]), sys.argv[5] or None
torch.set_num_threads(threads)
model = load_checkpoint(ckpt).model.eval()
files = sorted(inputs.glob("*.bin"))
out.mkdir(parents=True, exist_ok=True)
with torch.inference_mode():
    for i in range(0, len(files), bs):
        chunk = files[i:i + bs]
        x = torch.from_numpy(np.stack([np.fromfile(f, "<f4").reshape(3, 96, 96) for f in chunk]))
        y = model(x)
        y = (y[-1] if isinstance(y, (list, tuple)) else y).numpy()
        for f, logits in zip(chunk, y):
            (out / f"{f.stem}_0.bin").write_bytes(logits.astype("<f4").tobytes())
"""


def unetpp_cmd(backend: str, model: str, inputs: Path, out: Path, bs: int, threads: int) -> list[str]:
    exe = Path(sys.executable).with_name("unetpp")
    return [str(exe), "infer", "--model", model, "--backend", backend, "--input", str(inputs), "--output",
            str(out.parent), "--output-dirname", out.name, "--batchsize", str(bs), "--threads", str(threads),
            "--no-progress"]


def eager_cmd(inputs: Path, out: Path, bs: int, threads: int, checkpoint: str) -> list[str]:
    return [sys.executable, "-c", EAGER_LOOP, str(inputs), str(out), str(bs), str(threads), checkpoint]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def agreement(ref: Path, other: Path) -> dict[str, float]:
    diffs, flipped, total = [], 0, 0
    for f in sorted(ref.glob("*_0.bin")):
        a, b = np.fromfile(f, "<f4"), np.fromfile(other / f.name, "<f4")
        diffs.append(float(np.abs(a - b).max()))
        flipped += int(np.count_nonzero((a > 0.5) != (b > 0.5)))
        total += a.size
    return {"max_abs_diff": max(diffs), "flipped_pixels_pct": 100.0 * flipped / total, "outputs": len(diffs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", required=True, type=Path)
    ap.add_argument("--model", required=True, help="ONNX model for the `unetpp infer` (onnxruntime) variant")
    ap.add_argument("--checkpoint", default="", help="checkpoint for the eager loop (default: the shipped one)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=BACKEND:MODEL",
                    help="more `unetpp infer` variants, e.g. ov-int8=openvino:ov_int8.xml")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()

    n = len(list(args.inputs.glob("*.bin")))
    variants = {"unetpp-infer-ort-fp32": ("onnxruntime", args.model)}
    for v in args.variant:
        label, _, rest = v.partition("=")
        backend, _, model = rest.partition(":")
        variants[label] = (backend, model)
    with tempfile.TemporaryDirectory(prefix="unetpp-ive-") as tmp:
        tmp = Path(tmp)
        eager = "pytorch-eager-loop"
        cmds = {eager: eager_cmd(args.inputs, tmp / eager, args.batch, args.threads, args.checkpoint)}
        for label, (backend, model) in variants.items():
            cmds[label] = unetpp_cmd(backend, model, args.inputs, tmp / label, args.batch, args.threads)
        walls: dict[str, list[float]] = {k: [] for k in cmds}
        for r in range(args.repeats):
            for label, cmd in cmds.items():
                for stale in (tmp / label).glob("*") if (tmp / label).is_dir() else []:
                    stale.unlink()  # a fresh run each time, never a resumed one
                walls[label].append(timed(cmd))
                print(f"[{r + 1}/{args.repeats}] {label}: {walls[label][-1]:.2f} s", file=sys.stderr)
        agree = {label: agreement(tmp / "pytorch-eager-loop", tmp / label) for label in variants}

    med = {k: statistics.median(v) for k, v in walls.items()}
    eager = med["pytorch-eager-loop"]
    result = {"what": "whole-process wall clock (start to exit) over all inputs; median of round-robin repeats",
              **provenance(),
              "inputs": str(args.inputs), "n_inputs": n, "batch": args.batch, "threads": args.threads,
              "repeats": args.repeats, "walls_s": walls, "median_s": med,
              "images_per_s": {k: n / v for k, v in med.items()},
              "speedup_vs_eager": {k: eager / v for k, v in med.items()}, "agreement_vs_eager": agree,
              "commands": {k: shlex.join(c if k != "pytorch-eager-loop" else c[:2] + ["<EAGER_LOOP>"] + c[3:])
                           for k, c in cmds.items()},
              "command": shlex.join([Path(sys.executable).name, *sys.argv])}
    out = ensure_dir(args.out.parent) / args.out.name
    write_json_atomic(out.with_suffix(".json"), result)
    rows = [f"| {k} | {med[k]:.2f} | {n / med[k]:.1f} | {eager / med[k]:.2f}x | "
            + (f"{agree[k]['max_abs_diff']:.2e} / {agree[k]['flipped_pixels_pct']:.3f} % |" if k in agree else "— |")
            for k in cmds]
    m = result["machine"]
    md = (f"# `unetpp infer` against a PyTorch eager loop, whole process\n\n"
          f"{n} inputs, batch {args.batch}, {args.threads} threads; {m['cpu']} ({m['cores']} cores), "
          f"{result['date']}. Wall clock of each process from start to exit, median of {args.repeats} "
          f"round-robin runs.\n\n| variant | median s | images/s | speed-up vs eager "
          f"| max abs diff / flipped vs eager |\n"
          f"|---|---:|---:|---:|---:|\n" + "\n".join(rows) + f"\n\nCommand: `{result['command']}`\n")
    write_text_atomic(out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
