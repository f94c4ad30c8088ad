"""Reading instances at full resolution: DSB2018 ground truth (one PNG per nucleus) and `predict`'s label PNGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetpp.data.prepare import sample_image_path
from unetpp.data.preprocess import describe_unreadable, read_bgr, read_gray
from unetpp.errors import InputError, expected_found

LABELS_SUFFIX = "_labels.png"
MASK_SUFFIX = "_mask.png"
MAX_INSTANCES = np.iinfo(np.uint16).max


def load_gt_instances(stage1_train: str | Path, id_: str) -> np.ndarray:
    """uint16 label image of one stage1_train sample: the k-th mask PNG (sorted by file name) becomes id k.

    A pixel is foreground where the mask PNG is > 127 (as upstream's preparation). Where masks overlap (they do not
    in stage1_train as published) the later mask in file-name order wins; a nucleus entirely covered by later ones
    then has no pixel left and does not count. A sample whose masks folder is empty has no nuclei: an all-zero
    image of the sample image's size.
    """
    mask_dir = Path(stage1_train) / id_ / "masks"
    if not mask_dir.is_dir():
        raise InputError(expected_found(f"ground truth of {id_}", f"a masks folder at {mask_dir}", "none"))
    paths = sorted(p for p in mask_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(paths) > MAX_INSTANCES:
        raise InputError(expected_found(f"ground truth of {id_}", f"at most {MAX_INSTANCES} masks", len(paths)))
    if not paths:
        return np.zeros(read_bgr(sample_image_path(stage1_train, id_)).shape[:2], np.uint16)
    labels: np.ndarray | None = None
    for k, path in enumerate(paths, start=1):
        m = read_gray(path, "instance mask")
        if labels is None:
            labels = np.zeros(m.shape, np.uint16)
        elif m.shape != labels.shape:
            raise InputError(expected_found(f"instance mask {path}", f"the size of {paths[0].name} {labels.shape}",
                                            f"size {m.shape}"))
        labels[m > 127] = k
    assert labels is not None
    return labels


def read_label_image(path: str | Path) -> np.ndarray:
    """A label PNG as written by `unetpp predict` (uint16, 0 = background); uint8 is accepted too (see
    wrapped_ids_note: more than 255 nuclei do not fit in it)."""
    path = Path(path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if img is None:
        raise InputError(expected_found(f"label image {path}", "a readable 16-bit PNG", describe_unreadable(path)))
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise InputError(expected_found(f"label image {path}", "one channel of uint16 instance ids",
                                        f"{img.dtype} of shape {img.shape}"))
    return img


def wrapped_ids_note(labels: np.ndarray) -> str | None:
    """Why an 8-bit label image's ids may have wrapped past 255 (id 256 becomes 0, 257 becomes 1 ...), or None.

    Suspect: its largest id is 255, or an id covers regions that do not touch (8-connected), as two nuclei of
    one wrapped id do. 16-bit labels (what `unetpp predict` writes) are never suspect."""
    if labels.dtype != np.uint8 or not labels.any():
        return None
    from skimage.measure import label as connected_regions

    top = int(labels.max())
    n_ids = int(np.count_nonzero(np.bincount(labels.ravel(), minlength=256)[1:]))
    n_regions = int(connected_regions(labels, background=0, connectivity=2).max())
    if top < 255 and n_regions <= n_ids:
        return None
    parts = ([f"its largest id is {top}"] if top == 255 else []) + (
        [f"{n_regions - n_ids} id(s) cover regions that do not touch ({n_ids} ids, {n_regions} regions)"]
        if n_regions > n_ids else [])
    return "an 8-bit label image whose ids may have wrapped past 255: " + "; ".join(parts)


def read_pred_foreground(pred_dir: str | Path, id_: str, labels: np.ndarray) -> np.ndarray:
    """The predicted foreground: `<id>_mask.png` > 127 where it exists, else the labels > 0."""
    path = Path(pred_dir) / f"{id_}{MASK_SUFFIX}"
    if not path.is_file():
        return labels > 0
    m = read_gray(path, "predicted mask")
    if m.shape != labels.shape:
        raise InputError(expected_found(f"predicted mask {path}", f"the size of {id_}{LABELS_SUFFIX} {labels.shape}",
                                        f"size {m.shape}"))
    return m > 127


def prediction_ids(pred_dir: str | Path) -> list[str]:
    """Sorted stems S of the `S_labels.png` files in a predict output folder."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(expected_found("predictions", "a folder of <id>_labels.png (unetpp predict)",
                                        f"nothing at {pred_dir}"))
    return sorted(p.name[: -len(LABELS_SUFFIX)] for p in pred_dir.iterdir()
                  if p.is_file() and p.name.endswith(LABELS_SUFFIX) and len(p.name) > len(LABELS_SUFFIX))
