"""Write the default runtime's accuracy-check set (src/unetpp/weights/guard) from the selection set's train ids.

    python bench/accuracy/guard_set.py --data data/dsb2018 [--out src/unetpp/weights/guard]

The rule, fixed before any check ran on the images: per kind of image (modality, height, width), the first ones in
`selection_ids.txt` order (train ids the shipped instance model never trained on, none in val), as many as QUOTA
says. The images are copied as they are; each one's nuclei become one uint16 label PNG (eval.instance_io). A
larger set than the first one (12 images) because one image whose first-pass estimate flips between two states
moved the 12-image mAP by 0.0075 (bench/results/default_runtime.md).
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path

import cv2

from unetpp.bench.provenance import repo_root
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.modality import modality
from unetpp.predict.imageio import read_image

ROOT = repo_root(__file__)
SELECTION = ROOT / "src" / "unetpp" / "data" / "splits" / "selection_ids.txt"
# kind -> images; the selection set's proportions, rare kinds kept
QUOTA = {("fluorescence", 256, 256): 15, ("stained", 256, 320): 9, ("fluorescence", 360, 360): 6,
         ("fluorescence", 520, 696): 4, ("brightfield", 1024, 1024): 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "unetpp" / "weights" / "guard")
    a = ap.parse_args()
    train = a.data / "stage1_train"
    val = set((a.data / "val_ids.txt").read_text().split())
    chosen: dict[tuple, list[str]] = defaultdict(list)
    for id_ in SELECTION.read_text().split():
        assert id_ not in val, id_
        src = train / id_ / "images" / f"{id_}.png"
        img, _ = read_image(src)
        kind = (modality(img), img.shape[0], img.shape[1])
        if len(chosen[kind]) < QUOTA.get(kind, 0):
            chosen[kind].append(id_)
    for old in a.out.glob("*.png"):
        old.unlink()
    for kind, ids in chosen.items():
        for id_ in ids:
            shutil.copyfile(train / id_ / "images" / f"{id_}.png", a.out / f"{id_}.png")
            if not cv2.imwrite(str(a.out / f"{id_}_labels.png"), load_gt_instances(train, id_)):
                raise SystemExit(f"could not write the labels of {id_}")
        print(kind, len(ids))


if __name__ == "__main__":
    main()
