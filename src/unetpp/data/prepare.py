"""DSB2018 stage1_train -> upstream's `dsb2018_96` layout (images/<id>.png, masks/0/<id>.png).

As upstream preprocess_dsb2018.py: BGR image, union of instance masks, INTER_LINEAR resize, soft mask edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unetpp.atomic import ensure_dir, write_bytes_atomic
from unetpp.data.preprocess import name_few, read_bgr, read_gray
from unetpp.errors import InputError, OutputError, expected_found


def find_stage1_train(src: str | Path) -> Path:
    """Accept the stage1_train folder itself or a dataset root that contains it."""
    src = Path(src)
    if (src / "stage1_train").is_dir():
        return src / "stage1_train"
    if src.is_dir():
        return src
    raise InputError(expected_found("DSB2018 source", "a stage1_train folder or a folder holding one",
                                    f"nothing at {src}"))


def sample_image_path(stage1_train: str | Path, id_: str) -> Path:
    """Where stage1_train keeps a sample's image: <stage1_train>/<id>/images/<id>.png."""
    return Path(stage1_train) / id_ / "images" / f"{id_}.png"


def list_sample_ids(stage1_train: str | Path) -> list[str]:
    """The sample ids (sub-folder names, sorted) of a stage1_train folder."""
    stage1_train = Path(stage1_train)
    if not stage1_train.is_dir():
        raise InputError(expected_found("stage1_train folder", "an existing folder", f"nothing at {stage1_train}"))
    ids = sorted(p.name for p in stage1_train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not ids:
        raise InputError(expected_found(f"stage1_train folder {stage1_train}", "one sub-folder per sample id",
                                        "an empty folder"))
    return ids


def prepare_sample(sample_dir: str | Path, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """One sample as upstream: (BGR uint8 size x size x 3 image, uint8 size x size soft mask)."""
    sample_dir = Path(sample_dir)
    id_ = sample_dir.name
    img_path = sample_image_path(sample_dir.parent, id_)
    if not img_path.is_file():
        raise InputError(expected_found(f"sample {id_}", f"an image at {img_path}", "no such file"))
    img = read_bgr(img_path)
    mask_dir = sample_dir / "masks"
    if not mask_dir.is_dir():
        raise InputError(expected_found(f"sample {id_}", f"a masks folder at {mask_dir}", "none"))
    mask = np.zeros(img.shape[:2])  # float64, as upstream's np.zeros
    for mask_path in sorted(p for p in mask_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        m = read_gray(mask_path, "instance mask")
        if m.shape != mask.shape:
            raise InputError(expected_found(f"instance mask {mask_path}", f"the image size {mask.shape}",
                                            f"size {m.shape}"))
        mask[m > 127] = 1
    img = cv2.resize(img, (size, size))
    mask = cv2.resize(mask, (size, size))
    return img, (mask * 255).astype(np.uint8)


def _encode_png(arr: np.ndarray, what: str) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OutputError(f"cannot encode {what} as PNG")
    return buf.tobytes()


def prepare_dsb2018(
    stage1_train: str | Path,
    dst: str | Path,
    size: int = 96,
    ids: Sequence[str] | None = None,
    progress: bool = True,
    failures: list[dict[str, str]] | None = None,
) -> int:
    """Write dst/images/<id>.png and dst/masks/0/<id>.png for each id (default: all); returns the number written.

    Ids whose two outputs already exist are skipped (writes are atomic, so an existing file is complete). With a
    `failures` list, a sample that cannot be read is recorded there ({id, error}) and the others go on; without,
    it stops the run. A write error stops the run (exit 1 once something was written).
    """
    stage1_train = Path(stage1_train)
    dst = Path(dst)
    if size < 1:
        raise InputError(expected_found("size", "a positive number of pixels", size))
    all_ids = list_sample_ids(stage1_train)
    if ids is None:
        ids = all_ids
    else:
        ids = list(ids)
        known = set(all_ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise InputError(expected_found(f"ids in {stage1_train}", "a sample folder for every id",
                                            f"none for {name_few(missing)}"))
    img_dir, mask_dir = ensure_dir(dst / "images"), ensure_dir(dst / "masks" / "0")
    written = 0
    for id_ in tqdm(ids, desc="prepare", unit="img", disable=not progress):
        img_out, mask_out = img_dir / f"{id_}.png", mask_dir / f"{id_}.png"
        if img_out.is_file() and mask_out.is_file():
            continue
        try:
            img, mask = prepare_sample(stage1_train / id_, size)
        except InputError as exc:
            if failures is None:
                raise
            failures.append({"id": id_, "error": str(exc)})
            continue
        try:
            write_bytes_atomic(img_out, _encode_png(img, f"image {id_}"))
            write_bytes_atomic(mask_out, _encode_png(mask, f"mask {id_}"))
        except OutputError as exc:
            exc.exit_code = 1 if written else exc.exit_code
            raise
        written += 1
    return written


def load_prepared(root: str | Path, id_: str) -> tuple[np.ndarray, np.ndarray]:
    """A prepared pair: (BGR uint8 HxWx3 image, uint8 HxW mask) from a dsb2018_96-style root."""
    root = Path(root)
    return read_bgr(root / "images" / f"{id_}.png"), read_gray(root / "masks" / "0" / f"{id_}.png")
