"""Are `unetpp predict`'s outputs unchanged by the inference core? Runs the same predict command with the code of a
given commit (default caa8499, before the driver) and with this tree, on the 134 val ids, and compares every mask,
labels image and nucleus table byte for byte (and, where they differ, by pixels).

    python bench/speed/predict_identity.py [--before caa8499] [--mode tile] [--data data/dsb2018]

Writes bench/results/predict_identity_<mode>.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from unetpp.bench.provenance import repo_root

ROOT = repo_root(__file__)


def predict(src: Path, data: Path, out: Path, mode: str, cache: Path) -> float:
    # ONNX Runtime fp32 on both trees (an older tree ignores the variable; predict's default is now int8 OpenVINO)
    env = {**os.environ, "PYTHONPATH": str(src), "UNETPP_CACHE": str(cache), "UNETPP_DEFAULT_RUNTIME": "fp32"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unetpp", "predict", str(data / "stage1_train"), "--ids",
                    str(data / "val_ids.txt"), "-o", str(out), "--mode", mode, "--no-progress"], check=True, env=env,
                   cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="caa8499")
    ap.add_argument("--mode", default="tile")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="unetpp-identity-") as tmp_s:
        tmp = Path(tmp_s)
        old_src = tmp / "old"
        old_src.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "src"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive.stdout, check=True)
        t_old = predict(old_src / "src", args.data, tmp / "before", args.mode, tmp / "cache_old")
        t_new = predict(ROOT / "src", args.data, tmp / "after", args.mode, tmp / "cache_new")
        files = sorted(p.name for p in (tmp / "before").iterdir() if p.name.endswith(("_mask.png", "_labels.png",
                                                                                     "_nuclei.csv")))
        same, differ = 0, []
        for name in files:
            a, b = (tmp / "before" / name).read_bytes(), (tmp / "after" / name).read_bytes()
            if a == b:
                same += 1
                continue
            detail = ""
            if name.endswith(".png"):
                x = cv2.imread(str(tmp / "before" / name), cv2.IMREAD_UNCHANGED)
                y = cv2.imread(str(tmp / "after" / name), cv2.IMREAD_UNCHANGED)
                detail = f"{int(np.count_nonzero(x != y))} of {x.size} pixels differ"
            differ.append(f"{name}: {detail or 'text differs'}")
    lines = [f"# `unetpp predict --mode {args.mode}` before ({args.before}) and after the inference core", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, `python bench/speed/predict_identity.py --mode {args.mode}`, "
             "134 val ids, "
             "shipped model, ONNX Runtime (each side exports its own ONNX from the checkpoint).", "",
             f"- files compared: {len(files)} (mask, labels, nucleus table per image)",
             f"- byte-identical: {same}", f"- different: {len(differ)}",
             f"- wall time of the whole command (noisy, shared machine): before {t_old:.1f} s, after {t_new:.1f} s",
             ""] + [f"  - {d}" for d in differ]
    out = ROOT / "bench" / "results" / f"predict_identity_{args.mode}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
