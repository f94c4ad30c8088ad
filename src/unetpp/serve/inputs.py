"""What a request may carry, checked before anything runs: the upload's bytes, its image, its options, its name.

Every refusal is a `RequestError` with an HTTP status and the parts of the standard message (what, expected,
found); nothing here touches the file system.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from unetpp.errors import InputError, UnetppError, problem_of
from unetpp.predict.image import PredictOptions
from unetpp.predict.imageio import TIFF_CHANNELS_HINT, tiff_samples_problem, to_bgr, to_uint8

OPTION_FIELDS = ("mode", "scale", "threshold", "min_area", "overlap")
INCLUDE = ("labels", "mask", "overlay")
DEFAULT_MODE = "tile"
_STEM_BAD = re.compile(r"[^A-Za-z0-9._-]+")



class RequestError(InputError):
    """A request the server refuses: HTTP `status`, and what was expected and found."""

    def __init__(self, status: int, error: str, expected: str = "", found: str = "") -> None:
        super().__init__(f"{error}: expected {expected}, found {found}" if expected else error)
        self.status, self.error, self.expected, self.found = status, error, expected, found

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "expected": self.expected, "found": self.found}

    @classmethod
    def from_error(cls, status: int, exc: BaseException) -> RequestError:
        """A library error as the response's fields: its parts where it carries them (errors.Problem, made by
        expected_found), else its message as the error."""
        m = problem_of(exc)
        if m is None:
            return cls(status, str(exc).strip() or type(exc).__name__)
        what = m.what
        if what.startswith("--"):  # a PredictOptions check names the CLI flag; the API's field is named here
            what = "bad value for " + what[2:].replace("-", "_")
        what += f" ({m.fix})" if m.fix else ""
        return cls(status, what, m.expected, m.found)


@dataclass(frozen=True)
class Limits:
    """The server's limits on one request."""

    max_upload_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_files: int = 64


def sanitize_stem(filename: str | None, fallback: str = "image") -> str:
    """An upload's file name as a safe stem: its last path part without the suffix, only [A-Za-z0-9._-], no
    leading dots, at most 80 characters. It names entries in responses and ZIPs; it never reaches a path."""
    name = re.split(r"[\\/]", filename or "")[-1]
    if "." in name.strip("."):
        name = name.rsplit(".", 1)[0]
    stem = _STEM_BAD.sub("_", name).lstrip(".")[:80].strip("_")
    return stem or fallback


def _header_size(data: bytes, limits: Limits) -> tuple[int, int] | None:
    """(width, height) from the header alone where Pillow knows the format (a pixel bomb is refused before it is
    decoded); None where it does not (OpenCV's decode decides, and the size is checked after it)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as exc:  # Pillow's own limit, far above ours: refuse it as well
        raise RequestError(413, "image too large", f"at most {limits.max_pixels} pixels", str(exc)[:120]) from None
    except Exception:  # noqa: BLE001 - not a format Pillow reads
        return None


def _check_pixels(w: int, h: int, limits: Limits) -> None:
    if w * h > limits.max_pixels:
        raise RequestError(413, "image too large", f"at most {limits.max_pixels} pixels",
                           f"{w}x{h} = {w * h} pixels")


def decode_image(data: bytes, name: str, limits: Limits) -> np.ndarray:
    """Uploaded bytes as the model's input (BGR uint8), as `unetpp predict` reads a file of the same bytes."""
    what = f"file {name!r}"
    if not data:
        raise RequestError(400, f"empty upload {what}", "a PNG, TIFF or JPEG image", "0 bytes")
    size = _header_size(data, limits)
    if size is not None:
        _check_pixels(*size, limits)
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if is_jpeg and not data[-64:].rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise RequestError(422, f"corrupt image {what}", "a complete JPEG (ending in the FFD9 end-of-image marker)",
                           f"a truncated file of {len(data)} bytes")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None:
        kind = "a truncated or corrupt image" if _looks_like_image(data) else "bytes that are not an image"
        raise RequestError(415 if kind.startswith("bytes") else 422, f"unreadable {what}",
                           "a PNG, TIFF or JPEG image", f"{kind} ({len(data)} bytes)")
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise RequestError(422, f"empty image {what}", "at least 1x1 pixels", f"size {img.shape[:2]}")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        pages = _tiff_pages(data)
        if pages > 1:  # never reduced to its first page
            raise RequestError(422, f"multi-page image {what}", "a single-page image (`unetpp predict` segments "
                               "each page of a stack as <stem>_p<k>)", f"a TIFF of {pages} pages")
        problem = tiff_samples_problem(data)
        if problem:  # OpenCV keeps the first sample and drops the others without a word
            raise RequestError(422, f"multi-channel image {what} ({TIFF_CHANNELS_HINT})",
                               "grey, grey+alpha, RGB or RGBA samples", problem)
    _check_pixels(int(img.shape[1]), int(img.shape[0]), limits)
    try:
        return to_bgr(to_uint8(img))
    except InputError as exc:
        raise RequestError.from_error(422, exc) from None


def _tiff_pages(data: bytes) -> int:
    try:
        ok, pages = cv2.imdecodemulti(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return 1
    return len(pages) if ok else 1


def _looks_like_image(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff" or data[:4] in (b"II*\x00", b"MM\x00*")


def parse_options(fields: dict[str, str]) -> PredictOptions:
    """Form fields mode/scale/threshold/min_area/overlap as PredictOptions (tile mode unless told otherwise)."""
    unknown = sorted(set(fields) - set(OPTION_FIELDS))
    if unknown:
        raise RequestError(400, "unknown form field", "file and any of " + ", ".join(OPTION_FIELDS),
                           ", ".join(repr(u) for u in unknown))
    kwargs: dict[str, Any] = {"mode": fields.get("mode", DEFAULT_MODE) or DEFAULT_MODE}
    if fields.get("scale"):
        kwargs["scale"] = fields["scale"]
    for key, kind, expected in (("threshold", float, "a probability in (0, 1)"),
                                ("overlap", float, "a fraction in [0, 1)"),
                                ("min_area", int, "an integer >= 0")):
        raw = fields.get(key)
        if raw is None or raw == "":
            continue
        try:
            kwargs[key] = kind(raw)
        except ValueError:
            raise RequestError(400, f"bad value for {key}", expected, repr(raw)) from None
    try:
        return PredictOptions(**kwargs)
    except UnetppError as exc:
        raise RequestError.from_error(400, exc) from None


def parse_include(raw: str | None) -> list[str]:
    """?include=labels,mask,overlay: which PNGs come back base64 in the JSON."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    bad = [p for p in parts if p not in INCLUDE]
    if bad:
        raise RequestError(400, "bad value for include", "a comma-separated list of " + ", ".join(INCLUDE),
                           ", ".join(repr(b) for b in bad))
    return list(dict.fromkeys(parts))
