"""TNBC (H&E breast-cancer tiles, Naylor et al. 2019, CC BY 4.0) as extra instance training data beside DSB2018.

Layout read (the copy described by shared/data/tnbc/SOURCE.md): `images/NN_k.jpg` (RGB, 512x512, 40x) and
`labels/NN_k_label.png` (16-bit instance map: 0 background, one id per nucleus), NN the patient (slide). Tiles of
one slide look alike, so the split is by patient, never by tile: `unetpp/data/splits/tnbc_train_patients.txt`
(trained on) and `tnbc_heldout_patients.txt` (held out: never trained on, never used for a choice, reported only).

The annotators left a one-pixel gap of background between touching nuclei, where DSB2018's masks share an edge. So
that the foreground target does not teach a background line between touching nuclei, a background pixel whose
3x3 neighbourhood holds two different nuclei is given to the larger id among them (`close_annotation_gaps`); the
border target then marks the contact as it does in DSB2018. Each tile is scaled by the rule of
unetpp.train.instance_data (its true median nucleus to the target area), like every DSB2018 image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from unetpp.data.paths import read_ids
from unetpp.data.preprocess import read_bgr
from unetpp.errors import InputError, expected_found
from unetpp.train.instance_data import InstanceData, image_scale, rescale_sample
from unetpp.train.instance_targets import BorderParams, median_nucleus_area

TILE = re.compile(r"^(\d{2})_(\d+)$")
ID_PREFIX = "tnbc/"
SPLITS = {"train": "tnbc_train_patients.txt", "heldout": "tnbc_heldout_patients.txt"}
ATTRIBUTION = (
    "Trained in part on TNBC (Naylor P., Lae M., Reyal F., Walter T., \"Segmentation of Nuclei in Histopathology "
    "Images by Deep Regression of the Distance Map\", IEEE Transactions on Medical Imaging 38(2), 2019; Zenodo "
    "record 1175282), CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Changed from the original: the "
    "tiles are the JPEG re-encodings of the WeakNucleiSeg repository (commit d66ef68) and the annotations its "
    "16-bit instance maps; for training, one-pixel gaps between touching nuclei were closed and every tile rescaled "
    "so that its median nucleus covers 150 pixels."
)


def split_patients(split: str) -> list[str]:
    """The patients (two-digit slide numbers) of the shipped TNBC split 'train' or 'heldout'."""
    if split not in SPLITS:
        raise InputError(expected_found("TNBC split", " or ".join(SPLITS), split))
    return read_ids(Path(str(resources.files("unetpp.data").joinpath("splits", SPLITS[split]))))


def tnbc_tiles(root: str | Path, patients: Sequence[str] | None = None) -> list[tuple[str, Path, Path]]:
    """(tile name 'NN_k', image path, label path) of the tiles of `patients` (all when None), sorted by patient
    and tile number; every image must have its label map."""
    root = Path(root)
    img_dir, lab_dir = root / "images", root / "labels"
    if not img_dir.is_dir() or not lab_dir.is_dir():
        raise InputError(expected_found(f"TNBC folder {root}", "images/NN_k.jpg and labels/NN_k_label.png",
                                        "no images/ or labels/ folder"))
    wanted = None if patients is None else set(patients)
    rows = []
    for path in img_dir.iterdir():
        m = TILE.match(path.stem)
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or not m:
            continue
        if wanted is not None and m.group(1) not in wanted:
            continue
        label = lab_dir / f"{path.stem}_label.png"
        if not label.is_file():
            raise InputError(expected_found(f"label map of TNBC tile {path.name}", str(label), "no such file"))
        rows.append((int(m.group(1)), int(m.group(2)), path.stem, path, label))
    if not rows:
        raise InputError(expected_found(f"TNBC tiles in {img_dir}", f"NN_k.jpg of patients {sorted(wanted or [])}"
                                        if wanted is not None else "NN_k.jpg files", "none"))
    return [(name, img, lab) for _, _, name, img, lab in sorted(rows)]


def read_label_map(path: str | Path) -> np.ndarray:
    """A 16-bit (or 8-bit) single-channel instance map as int32; anything else is refused."""
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise InputError(expected_found(f"label map {path}", "a readable PNG", "an unreadable file"))
    if lab.ndim != 2 or lab.dtype not in (np.uint8, np.uint16):
        raise InputError(expected_found(f"label map {path}", "one channel of 8- or 16-bit nucleus ids",
                                        f"{lab.dtype} with shape {lab.shape}"))
    return lab.astype(np.int32)


def close_annotation_gaps(labels: np.ndarray) -> np.ndarray:
    """Background pixels whose 3x3 neighbourhood holds two different nuclei join the larger id of the two
    (one pass: gaps of one pixel close; nuclei apart by more stay apart)."""
    lab = np.asarray(labels, np.int32)
    hi = ndi.maximum_filter(lab, size=3)
    lo = ndi.minimum_filter(np.where(lab > 0, lab, np.iinfo(np.int32).max), size=3)
    gap = (lab == 0) & (hi > 0) & (lo != np.iinfo(np.int32).max) & (hi != lo)
    out = lab.copy()
    out[gap] = hi[gap]
    return out


def load_tnbc_tile(image: Path, label: Path, target_area: float,
                   border: BorderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """One tile read and rescaled as unetpp.train.instance_data.load_sample does a DSB2018 image."""
    img = read_bgr(image)
    lab = close_annotation_gaps(read_label_map(label))
    if lab.shape != img.shape[:2]:
        raise InputError(expected_found(f"label map {label}", f"the image size {img.shape[:2]}", f"{lab.shape}"))
    median = median_nucleus_area(lab)
    s = image_scale(median, target_area)
    im, lb, tg = rescale_sample(img, lab, s, border)
    return im, lb, tg, s, float(median or 0.0)


def build_tnbc_data(root: str | Path, patients: Sequence[str], target_area: float,
                    border: BorderParams | None = None) -> InstanceData:
    """The tiles of `patients` at the nucleus-normalised scale, ids 'tnbc/NN_k' (50 tiles load in seconds: no cache)."""
    border = border or BorderParams()
    tiles = tnbc_tiles(root, patients)
    rows = [load_tnbc_tile(img, lab, target_area, border) for _, img, lab in tiles]
    return InstanceData([ID_PREFIX + name for name, _, _ in tiles], [r[0] for r in rows], [r[1] for r in rows],
                        [r[2] for r in rows], np.array([r[3] for r in rows], np.float64),
                        np.array([r[4] for r in rows], np.float64))


def concat_data(a: InstanceData, b: InstanceData) -> InstanceData:
    """a's samples, then b's."""
    return InstanceData(a.ids + b.ids, a.images + b.images, a.labels + b.labels, a.targets + b.targets,
                        np.concatenate([a.scales, b.scales]), np.concatenate([a.median_areas, b.median_areas]))
