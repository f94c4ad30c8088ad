"""The guide's network input: BGR uint8 -> ImageNet Normalize (BGR order) -> extra /255 -> CHW float32 .bin/.npy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unetpp.atomic import atomic_path, ensure_dir, write_bytes_atomic
from unetpp.config import PreprocessConfig
from unetpp.errors import InputError, OutputError, expected_found

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INPUT_SUFFIXES = (".bin", ".npy")


def name_few(items: Sequence[object], k: int = 5) -> str:
    """'a, b, c' or 'a, b, c, d, e ... (12 in all)' for error messages."""
    items = list(items)
    head = ", ".join(str(x) for x in items[:k])
    return head if len(items) <= k else f"{head} ... ({len(items)} in all)"


def describe_unreadable(path: Path) -> str:
    """What was found at a path that OpenCV could not decode."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "a folder"
    size = path.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    head = path.read_bytes()[:8]
    if path.suffix.lower() == ".png" and head != PNG_SIGNATURE:
        return f"{size} bytes that do not start with the PNG signature (first bytes {head!r})"
    return f"a {size}-byte file that OpenCV cannot decode (truncated or corrupt)"


def _imread(path: str | Path, flag: int, what: str) -> np.ndarray:
    path = Path(path)
    img = cv2.imread(str(path), flag) if path.is_file() else None
    if img is None:
        raise InputError(expected_found(f"{what} {path}", "a readable image (PNG)", describe_unreadable(path)))
    return img


def read_bgr(path: str | Path) -> np.ndarray:
    """cv2.imread default flag: uint8 HxWx3 BGR (grey is replicated, alpha dropped)."""
    return _imread(path, cv2.IMREAD_COLOR, "image")


def read_gray(path: str | Path, what: str = "mask") -> np.ndarray:
    """cv2.imread grayscale: uint8 HxW."""
    return _imread(path, cv2.IMREAD_GRAYSCALE, what)


def normalize(img_bgr: np.ndarray, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """((img/255 - mean)/std)/255 with mean/std in the image's channel order (BGR: channel 0 gets 0.485); CHW float32.

    Arithmetic in float32 as albumentations' Normalize(max_pixel_value=255) followed by upstream's astype/255.
    """
    cfg = cfg or PreprocessConfig()
    if not isinstance(img_bgr, np.ndarray) or img_bgr.dtype != np.uint8 or img_bgr.ndim != 3 or img_bgr.shape[2] != 3:
        found = f"{getattr(img_bgr, 'dtype', type(img_bgr).__name__)} array of shape {getattr(img_bgr, 'shape', '?')}"
        raise InputError(expected_found("image to normalise", "a uint8 HxWx3 BGR array", found))
    img = img_bgr if cfg.channel_order.upper() == "BGR" else img_bgr[..., ::-1]
    mean = np.asarray(cfg.mean, dtype=np.float32) * np.float32(255.0)
    inv_std = np.float32(1.0) / (np.asarray(cfg.std, dtype=np.float32) * np.float32(255.0))
    x = (img.astype(np.float32) - mean) * inv_std
    x = x / np.float32(cfg.extra_divide)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def preprocess_folder(
    images_dir: str | Path,
    out_dir: str | Path,
    ids: Sequence[str],
    fmt: str = "bin",
    cfg: PreprocessConfig | None = None,
    progress: bool = True,
    failures: list[dict[str, str]] | None = None,
) -> int:
    """Write `<id>.bin` (raw little-endian float32, 3xSxS) or `<id>.npy` for each id; returns the count written.
    With a `failures` list, an unreadable or wrong-size image is recorded there ({id, error}) and the others go
    on; without, it stops the run. A write error stops the run (exit 1 once something was written)."""
    cfg = cfg or PreprocessConfig()
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if fmt not in ("bin", "npy"):
        raise InputError(expected_found("output format", "bin or npy", repr(fmt)))
    if not images_dir.is_dir():
        raise InputError(expected_found("images folder", "an existing folder of <id>.png", f"nothing at {images_dir}"))
    ids = list(ids)
    if not ids:
        raise InputError(expected_found("ids to pre-process", "at least one id", "an empty list"))
    missing = [i for i in ids if not (images_dir / f"{i}.png").is_file()]
    if missing:
        raise InputError(
            expected_found(f"images in {images_dir}", "<id>.png for every id", f"none for {name_few(missing)}",
                           "Run `unetpp prepare` first, or check the ids file.")
        )
    ensure_dir(out_dir)
    written = 0
    for id_ in tqdm(ids, desc="preprocess", unit="img", disable=not progress):
        path = images_dir / f"{id_}.png"
        try:
            img = read_bgr(path)
            if img.shape[:2] != (cfg.size, cfg.size):
                raise InputError(
                    expected_found(f"image {path}", f"{cfg.size}x{cfg.size}", f"{img.shape[0]}x{img.shape[1]}",
                                   f"Prepare the data at --size {cfg.size} first.")
                )
        except InputError as exc:
            if failures is None:
                raise
            failures.append({"id": id_, "error": str(exc)})
            continue
        x = normalize(img, cfg)
        try:
            if fmt == "bin":
                write_bytes_atomic(out_dir / f"{id_}.bin", x.astype("<f4").tobytes())
            else:
                _save_npy_atomic(out_dir / f"{id_}.npy", x)
        except OutputError as exc:
            exc.exit_code = 1 if written else exc.exit_code
            raise
        written += 1
    return written


def _read_float_file(path: Path, nbytes: int, shapes: Sequence[tuple[int, ...]], what: str) -> np.ndarray:
    """A raw .bin of exactly nbytes, or an .npy whose shape is one of `shapes`; float32, flat."""
    if not path.is_file():
        raise InputError(expected_found(f"{what} {path}", "an existing .bin or .npy file", "no such file"))
    suffix = path.suffix.lower()
    if suffix == ".bin":
        size = path.stat().st_size
        if size != nbytes:
            raise InputError(expected_found(f"{what} {path}", f"{nbytes} bytes (raw float32)", f"{size} bytes"))
        return np.fromfile(path, dtype="<f4").astype(np.float32, copy=False)
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(expected_found(f"{what} {path}", "a readable .npy array", f"an error: {exc}")) from None
        if tuple(arr.shape) not in [tuple(s) for s in shapes]:
            raise InputError(expected_found(f"{what} {path}", f"shape {shapes[0]}", f"shape {tuple(arr.shape)}"))
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputError(expected_found(f"{what} {path}", "a float32 array", f"dtype {arr.dtype}"))
        return arr.astype(np.float32, copy=False).reshape(-1)
    raise InputError(expected_found(f"{what} {path}", "a .bin or .npy file", f"suffix {path.suffix!r}"))


def nonfinite_values(arr: np.ndarray) -> str | None:
    """How many values of a float array are NaN or infinite ("1 NaN and 2 infinite of 300 values"), None if none."""
    if not np.issubdtype(arr.dtype, np.floating):
        return None
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    n_nan = int(np.isnan(arr).sum())
    return f"{n_nan} NaN and {int(bad.sum()) - n_nan} infinite of {arr.size} values"


def read_input(path: str | Path, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """One network input file as float32 (3, S, S); NaN or infinite values are refused (that file alone)."""
    cfg = cfg or PreprocessConfig()
    shape = cfg.input_shape
    flat = _read_float_file(Path(path), cfg.input_nbytes, [shape, (1, *shape)], "input file")
    bad = nonfinite_values(flat)
    if bad:
        raise InputError(expected_found(f"input file {path}", "finite numbers", bad))
    return flat.reshape(shape)


def read_logits(path: str | Path, size: int = 96) -> np.ndarray:
    """One output file (`<id>_0.bin` / `.npy`, 1xSxS float32 logits) as (S, S)."""
    s = (size, size)
    flat = _read_float_file(Path(path), 4 * size * size, [s, (1, *s), (1, 1, *s)], "output file")
    return flat.reshape(s)


def list_inputs(folder: str | Path) -> list[Path]:
    """The sorted .bin/.npy files of a folder (the order the inference tool batches them in)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            expected_found("input folder", "an existing folder of .bin/.npy files", f"nothing at {folder}")
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
    if not files:
        raise InputError(
            expected_found(f"input folder {folder}", "at least one .bin or .npy file", "none",
                           "Run `unetpp preprocess` first.")
        )
    return files
