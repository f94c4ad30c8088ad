"""Read a microscopy image of any common kind and bring it to the model's input: 3-channel BGR uint8.

Accepted: PNG, TIFF, JPEG; grey, grey+alpha (files), RGB(BGR as OpenCV reads it), RGBA; 8-bit, 16-bit (and float TIFF).
- grey is replicated to 3 channels; alpha is dropped (as the guide's `cv2.imread(path)` does);
- 16-bit / float: `bit16="stretch"` (default) maps the 0.1th..99.9th percentiles of the whole image linearly to
  0..255 (robust to a 12-bit camera in a 16-bit container and to a few hot pixels); `bit16="257"` is the plain
  `value / 257` (a 16-bit copy of an 8-bit image comes back exactly). 8-bit images are used as they are.
- a float image with NaN or infinite values is refused (that image alone): no stretch can guess what they meant.
- a multi-page TIFF is read one page at a time (`page`, from 1); without a page it is refused, never reduced to
  its first page (`unetpp predict` segments each page: predict/sources.py).
- a TIFF page whose samples are not grey, grey+alpha, RGB or RGBA (2 channels of fluorescence, 3 or 4 channels
  stored as "min-is-black" samples, more than 4) is refused, that image alone: OpenCV would keep its first sample
  and drop the others without a word. Save each channel as a page of its own (a channels-first stack) and
  `unetpp predict` segments each as `<stem>_p<k>`.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from unetpp.data.preprocess import describe_unreadable, nonfinite_values
from unetpp.errors import InputError, expected_found

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
BIT16_MODES = ("stretch", "257")
STRETCH_PERCENTILES = (0.1, 99.9)


@dataclass(frozen=True)
class ImageInfo:
    """What the file held before conversion."""

    path: str
    height: int
    width: int
    channels: int
    dtype: str


def check_suffix(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(expected_found(f"image {path}", "a file ending in " + ", ".join(IMAGE_SUFFIXES),
                                        f"suffix {path.suffix!r}" if path.suffix else "no suffix"))


def to_uint8(img: np.ndarray, bit16: str = "stretch") -> np.ndarray:
    """8-bit-equivalent copy of a 16-bit or float image (see the module docstring); uint8 passes through."""
    if img.dtype == np.uint8:
        return img
    if bit16 not in BIT16_MODES:
        raise InputError(expected_found("16-bit conversion", " or ".join(BIT16_MODES), repr(bit16)))
    if img.dtype == np.uint16 and bit16 == "257":
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype not in (np.uint16, np.float32, np.float64, np.int16, np.int32):
        raise InputError(expected_found("image sample type", "uint8, uint16 or float", str(img.dtype)))
    data = img.astype(np.float32)
    bad = nonfinite_values(data)
    if bad:
        raise InputError(expected_found("image values", "finite numbers", bad))
    lo, hi = np.percentile(data, STRETCH_PERCENTILES)
    if hi <= lo:  # a flat image: keep its level on the 8-bit scale where it is a 16-bit one, else mid-grey
        level = lo / 257.0 if img.dtype == np.uint16 else 0.0
        return np.full(img.shape, np.uint8(np.clip(round(level), 0, 255)))
    out = (data - lo) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def check_finite(arr: np.ndarray, what: str) -> None:
    """Refuse an array with NaN or infinite values: expected finite numbers, found how many were not."""
    bad = nonfinite_values(np.asarray(arr))
    if bad:
        raise InputError(expected_found(f"{what} values", "finite numbers", bad))


def to_bgr(img: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx3 (BGR), HxWx4 (BGRA) -> HxWx3 BGR of the same dtype. Two channels are refused: grey +
    alpha or two channels of fluorescence, they cannot be told apart (OpenCV reads a grey+alpha PNG as BGRA)."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim == 3 and img.shape[2] == 2:
        raise InputError(expected_found("image layout", "grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4)",
                                        f"2 channels, shape {img.shape}", "segment each channel as an image of "
                                        "its own (image[..., k]); for grey + alpha pass image[..., 0]"))
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise InputError(expected_found("image layout", "grey, RGB or RGBA",
                                        f"an array of shape {img.shape}"))
    c = img.shape[2]
    if c == 1:
        return np.ascontiguousarray(np.repeat(img[:, :, :1], 3, axis=2))
    return np.ascontiguousarray(img[:, :, :3])


def _jpeg_complete(path: Path) -> bool:
    """OpenCV decodes a truncated JPEG with a warning and grey filler; its missing end marker gives it away."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 64))
        tail = f.read().rstrip(b"\x00\r\n ")
    return tail.endswith(b"\xff\xd9")


def page_count(path: str | Path) -> int:
    """Pages of an image file (a TIFF may hold many); 0 when OpenCV cannot read its header."""
    try:
        return int(cv2.imcount(str(path)))
    except cv2.error:
        return 0


# -- TIFF samples: what a page holds per pixel, read from its tags (OpenCV drops what it cannot show) -----------
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TAG_PHOTOMETRIC, _TAG_SAMPLES, _TAG_EXTRA = 262, 277, 338
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}
_SHORT_FORMS = {1: "B", 3: "H", 4: "I", 16: "Q"}
# colour samples per photometric interpretation: min-is-white/black, palette, mask: 1; RGB, YCbCr, CIELab: 3; CMYK 4
_COLOUR_SAMPLES = {0: 1, 1: 1, 3: 1, 4: 1, 2: 3, 6: 3, 8: 3, 9: 3, 10: 3, 5: 4}
_ALPHA = (1, 2)  # ExtraSamples: associated, unassociated alpha (0 is "unspecified data")
TIFF_CHANNELS_HINT = ("save each channel as a page of its own (a channels-first stack): `unetpp predict` segments "
                      "each page as <stem>_p<k>")


def _tiff_tags(fh: BinaryIO, index: int) -> dict[int, list[int]] | None:
    """Photometric, SamplesPerPixel and ExtraSamples of the index-th page (IFD), None where unreadable."""
    head = fh.read(16)
    if head[:4] not in TIFF_MAGIC:
        return None
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    count_fmt, off_fmt, entry = ("Q", "Q", 20) if big else ("H", "I", 12)
    offset = struct.unpack(order + off_fmt, head[8:16] if big else head[4:8])[0]
    for _ in range(index):
        if not offset:
            return None
        fh.seek(offset)
        n = struct.unpack(order + count_fmt, fh.read(struct.calcsize(count_fmt)))[0]
        fh.seek(offset + struct.calcsize(count_fmt) + n * entry)
        offset = struct.unpack(order + off_fmt, fh.read(struct.calcsize(off_fmt)))[0]
    if not offset:
        return None
    fh.seek(offset)
    n = struct.unpack(order + count_fmt, fh.read(struct.calcsize(count_fmt)))[0]
    table = fh.read(min(n, 4096) * entry)
    tags: dict[int, list[int]] = {}
    for i in range(len(table) // entry):
        raw = table[i * entry:(i + 1) * entry]
        tag, typ = struct.unpack(order + "HH", raw[:4])
        if tag not in (_TAG_PHOTOMETRIC, _TAG_SAMPLES, _TAG_EXTRA) or typ not in _SHORT_FORMS:
            continue
        count = struct.unpack(order + ("Q" if big else "I"), raw[4:12] if big else raw[4:8])[0]
        size = _TYPE_SIZES[typ] * min(count, 64)
        value = raw[12:20] if big else raw[8:12]
        if size > len(value):
            fh.seek(struct.unpack(order + off_fmt, value)[0])
            value = fh.read(size)
        tags[tag] = list(struct.unpack(f"{order}{min(count, 64)}{_SHORT_FORMS[typ]}", value[:size]))
    return tags


def tiff_samples_problem(source: str | Path | bytes, page: int | None = None) -> str | None:
    """What is wrong with the samples of a TIFF page (from 1; None: the first) for a picture of nuclei: None when
    they are grey, grey+alpha, RGB(A) (or the file is no TIFF / unreadable here: the decoder says so), else what
    was found ("a TIFF of 2 samples per pixel, grey + 1 unspecified")."""
    try:
        with (io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")) as fh:
            tags = _tiff_tags(fh, (page or 1) - 1)
    except (OSError, struct.error, ValueError):
        return None
    if not tags:
        return None
    samples = (tags.get(_TAG_SAMPLES) or [1])[0]
    photometric = (tags.get(_TAG_PHOTOMETRIC) or [None])[0]
    extra = tags.get(_TAG_EXTRA) or []
    colour = _COLOUR_SAMPLES.get(photometric, 1 if samples <= 2 else 3)
    alpha = samples == colour + 1 and (bool(extra) and extra[0] in _ALPHA or colour == 3)  # RGB + a 4th: RGBA
    if samples == colour or alpha:
        return None
    kind = {1: "grey", 3: "colour", 4: "CMYK"}.get(colour, "colour")
    others = samples - colour
    return (f"a TIFF of {samples} samples per pixel" + (f" ({kind} + {others} more that are not alpha)"
                                                        if others > 0 else ""))


def _read_page(path: Path, page: int | None) -> np.ndarray | None:
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    problem = tiff_samples_problem(path, page)
    if problem:
        raise InputError(expected_found(f"image {path}" + (f" page {page}" if page else ""),
                                        "grey, grey+alpha, RGB or RGBA samples", problem, TIFF_CHANNELS_HINT))
    n = page_count(path)
    if page is None and n > 1:
        raise InputError(expected_found(f"image {path}", "a single-page image (`unetpp predict` segments each page "
                                        "of a stack as <stem>_p<k>)", f"a TIFF of {n} pages"))
    if page is None or n <= 1:
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if not 1 <= page <= n:
        raise InputError(expected_found(f"page of {path}", f"1..{n}", page))
    ok, pages = cv2.imreadmulti(str(path), start=page - 1, count=1, flags=cv2.IMREAD_UNCHANGED)
    return pages[0] if ok and pages else None


def read_image(path: str | Path, bit16: str = "stretch", page: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """An image file (or one `page` of a multi-page TIFF, from 1) as (uint8 HxWx3 BGR, what the file held).
    Errors say what was expected and what was found."""
    path = Path(path)
    if not path.is_file():
        raise InputError(expected_found(f"image {path}", "an existing image file", describe_unreadable(path)))
    check_suffix(path)
    if path.stat().st_size == 0:
        raise InputError(expected_found(f"image {path}", "a readable image", "an empty file (0 bytes)"))
    if path.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_complete(path):
        raise InputError(expected_found(f"image {path}", "a complete JPEG (ending in the FFD9 end-of-image marker)",
                                        f"a truncated file of {path.stat().st_size} bytes"))
    img = _read_page(path, page)
    if img is None:
        raise InputError(expected_found(f"image {path}", f"a readable {path.suffix.lower()[1:].upper()} image",
                                        describe_unreadable(path)))
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(expected_found(f"image {path}", "at least 1x1 pixels", f"size {img.shape[:2]}"))
    info = ImageInfo(str(path), int(img.shape[0]), int(img.shape[1]), 1 if img.ndim == 2 else int(img.shape[2]),
                     str(img.dtype))
    try:
        return to_bgr(to_uint8(img, bit16)), info
    except InputError as exc:
        raise InputError(f"image {path}{f' page {page}' if page else ''}: {exc}") from None
