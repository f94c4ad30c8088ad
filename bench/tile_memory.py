"""Peak memory of `unetpp predict --mode tile`'s tile loop, real model and runtime, at scale 1.0 (no rescale).

Two images: the one 1040x1388 DSB2018 stage1_train image, and a 4x larger one (2080x2776, the same image mirrored
2x2). Each runs in a fresh process: tracemalloc over predict_tiled (numpy/Python allocations; the two float32
H x W accumulators are O(H*W) by design and are reported apart) and the process's peak RSS growth (which also
sees the runtime's own arena).

    flock -s /tmp/unetpp-cpu.lock .venv/bin/python bench/tile_memory.py --data data/dsb2018 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

BIG_ID = "c901794d1a421d52e5734500c0a2a8ca84651fb93b19cec2f411855e70cae339"  # the only 1040x1388 image


def one(data: Path, factor: int, threads: int, batch: int) -> dict:
    from tiled import predict_tiled

    from unetpp.predict.image import PredictOptions
    from unetpp.predict.imageio import read_image
    from unetpp.predict.tiling import count_windows
    from unetpp.runtimes import open_runtime

    img, _ = read_image(data / "stage1_train" / BIG_ID / "images" / f"{BIG_ID}.png")
    if factor == 2:
        img = np.concatenate([img, img[::-1]], axis=0)  # mirrored: 2x the rows
        img = np.ascontiguousarray(np.concatenate([img, img[:, ::-1]], axis=1))  # and 2x the columns
    h, w = img.shape[:2]
    rt = open_runtime(threads=threads).activate()
    opts = PredictOptions(mode="tile", scale=1.0, batch=batch)
    predict_tiled(np.ascontiguousarray(img[:96, :96]), rt, 1.0, opts)  # warm the runtime's arena
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats: dict = {}
    tracemalloc.start()
    t0 = time.perf_counter()
    prob = predict_tiled(img, rt, 1.0, opts, stats)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    accumulators = 2 * 4 * h * w
    return {"image": f"{h}x{w}", "tiles": stats["n_tiles"], "expected_tiles": count_windows(h, w, 96, 0.25),
            "batch": batch, "traced_peak_bytes": peak, "accumulators_bytes": accumulators,
            "tile_loop_working_set_bytes": peak - accumulators,
            "all_tiles_as_list_bytes": stats["n_tiles"] * 96 * 96 * 3,
            "peak_rss_growth_kib": rss1 - rss0, "seconds": round(seconds, 1), "mean_prob": float(prob.mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/dsb2018")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--one", type=int, choices=(1, 2), help=argparse.SUPPRESS)
    ap.add_argument("--out", default="bench/results/tile_memory")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.data), args.one, args.threads, args.batch)))
        return 0
    rows = []
    for factor in (1, 2):
        cmd = [sys.executable, __file__, "--data", args.data, "--threads", str(args.threads), "--batch",
               str(args.batch), "--one", str(factor)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = ["| image | tiles | traced peak (MiB) | of which accumulators 2xHxWxf32 (MiB) | tile-loop working set "
             "(KiB) | all tiles as a list would be (MiB) | peak RSS growth (MiB) | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['tiles']} | {r['traced_peak_bytes'] / 2**20:.1f} | "
                     f"{r['accumulators_bytes'] / 2**20:.1f} | {r['tile_loop_working_set_bytes'] / 1024:.0f} | "
                     f"{r['all_tiles_as_list_bytes'] / 2**20:.1f} | {r['peak_rss_growth_kib'] / 1024:.1f} | "
                     f"{r['seconds']} |")
    md = "\n".join(lines)
    result = {"command": " ".join(["python"] + sys.argv), "machine": platform.platform(), "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        "# Tile-loop memory, `unetpp predict --mode tile --scale 1.0`\n\n"
        f"Command: `{result['command']}` (onnxruntime, {args.threads} threads, batch {args.batch}, overlap 0.25).\n\n"
        + md + "\n\nThe two float32 accumulators (sum p*w, sum w) are O(H*W) by design, like the image and the "
        "output; everything else the tile loop holds (traced: one batch buffer, its normalised copy and the "
        "runtime's output) is the same for 4x the tiles. Peak RSS growth is measured after a one-tile warm-up, so "
        "it includes the runtime's arena for batch-16 activations (allocated once, the same for both images); the "
        "difference between the two rows is about the difference of their accumulators.\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
