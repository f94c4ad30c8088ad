"""Calibration inputs for the instance model's int8 builds: 96x96 windows as `unetpp predict` feeds them (the
image rescaled so its median nucleus covers 150 px, the model's own rule), from TRAIN ids only.

    python bench/accuracy/instance_calib_tiles.py [--data data/dsb2018] [--count 200] -o runs/instance_calib

Each of the first `count` train ids (in train_ids.txt order, held-out ones included: no selection is made on
them here) gives one window: centred on a random nucleus (seeded by the id), at the scale the training used
(the true median nucleus area; predict estimates it). Written as raw float32 3x96x96 `<id>.bin`, normalised as
the model expects, for `unetpp compile --int8 --calib DIR`.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

from unetpp.bench.provenance import repo_root

ROOT = repo_root(__file__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "runs" / "instance_calib")
    a = ap.parse_args()
    from unetpp.atomic import write_bytes_atomic
    from unetpp.config import PreprocessConfig
    from unetpp.data.paths import read_ids
    from unetpp.data.preprocess import normalize
    from unetpp.train.instance_data import DEFAULT_TARGET_AREA, crop_window, load_sample
    from unetpp.train.instance_targets import BorderParams

    cfg, size = PreprocessConfig(), 96
    a.output.mkdir(parents=True, exist_ok=True)
    ids = read_ids(a.data / "train_ids.txt")[: a.count]
    for id_ in ids:
        img, labels, _, _, _ = load_sample(a.data / "stage1_train", id_, DEFAULT_TARGET_AREA, BorderParams())
        rng = np.random.default_rng(zlib.crc32(id_.encode()))
        h, w = labels.shape
        fg = np.flatnonzero(labels)
        cy, cx = divmod(int(fg[rng.integers(fg.size)]), w) if fg.size else (h // 2, w // 2)
        y0, x0 = min(max(cy - size // 2, 0), max(h - size, 0)), min(max(cx - size // 2, 0), max(w - size, 0))
        x = normalize(crop_window(img, y0, x0, size), cfg)
        write_bytes_atomic(a.output / f"{id_}.bin", np.ascontiguousarray(x, np.float32).tobytes())
    print(f"wrote {len(ids)} calibration windows to {a.output}")


if __name__ == "__main__":
    main()
