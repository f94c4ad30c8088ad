"""stage1_train samples at a per-image scale that normalises nucleus size, held in memory; random-crop dataset.

Each image is rescaled by s = clip(sqrt(A / M), S_MIN, S_MAX), M the median area (original pixels) of its ground
truth nuclei and A the target median area in model-input pixels, so every image's median nucleus covers about A
pixels (the rule `nuclei@A` of unetpp.predict.scale, with the true median instead of an estimated one). The label
image is rescaled with nearest neighbour and the targets (unetpp.train.instance_targets) computed at that scale.
Everything is built once and cached as one .npz (keyed by ids, A and the border parameters) so a resume is fast.

Training samples are keyed (epoch, i): a random crop (half of them placed on a nucleus) of side round(size / j),
j a scale jitter drawn log-uniformly in [jitter_lo, jitter_hi], resized to size x size (image linear, targets
linear -> soft edges); images smaller than the crop are padded by reflection. All draws come from (seed, epoch, i) only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from unetpp.atomic import atomic_path
from unetpp.config import PreprocessConfig
from unetpp.data.prepare import sample_image_path
from unetpp.data.preprocess import normalize, read_bgr
from unetpp.errors import InputError, OutputError, expected_found
from unetpp.eval.instance_io import load_gt_instances
from unetpp.train.appearance_v2 import AppearanceV2, augment_crop_v2
from unetpp.train.he_augment import AppearanceV3, augment_crop_v3
from unetpp.train.instance_targets import BorderParams, instance_targets, median_nucleus_area
from unetpp.train.modality_augment import ModalityParams, augment_crop
from unetpp.train.sampling import seed_sequence

STREAM_CROP = 11
CACHE_VERSION = 1
S_MIN, S_MAX = 0.1, 4.0
DEFAULT_TARGET_AREA = 150.0
FG_BIAS = 0.5
SCALE_RULE = "nuclei@{area:g}"  # unetpp.predict.scale syntax; in training M is the true median area


def image_scale(median_area: float | None, target_area: float) -> float:
    """s = clip(sqrt(A / M), S_MIN, S_MAX); 1.0 for an image without nuclei."""
    if not median_area or median_area <= 0:
        return 1.0
    return float(min(max(math.sqrt(target_area / median_area), S_MIN), S_MAX))


@dataclass
class InstanceData:
    """Per sample: BGR uint8 (H, W, 3) image, int (H, W) labels, uint8 (2, H, W) targets, at its scale."""

    ids: list[str]
    images: list[np.ndarray]
    labels: list[np.ndarray]
    targets: list[np.ndarray]
    scales: np.ndarray
    median_areas: np.ndarray  # original pixels; 0 where an image has no nuclei

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Sequence[int]) -> InstanceData:
        idx = list(idx)
        return InstanceData([self.ids[i] for i in idx], [self.images[i] for i in idx], [self.labels[i] for i in idx],
                            [self.targets[i] for i in idx], self.scales[idx], self.median_areas[idx])


def rescale_sample(img: np.ndarray, labels: np.ndarray, s: float,
                   border: BorderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, labels, targets) at scale s: image linear (area when shrinking), labels nearest."""
    h, w = labels.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
        labels = cv2.resize(labels.astype(np.uint16), (nw, nh), interpolation=cv2.INTER_NEAREST)
    labels = labels.astype(np.int32)
    return np.ascontiguousarray(img), labels, instance_targets(labels, border)


def load_sample(stage1_train: Path, id_: str, target_area: float,
                border: BorderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """One sample read from stage1_train and rescaled: (image, labels, targets, scale, median area)."""
    img = read_bgr(sample_image_path(stage1_train, id_))
    labels = load_gt_instances(stage1_train, id_)
    if labels.shape != img.shape[:2]:
        raise InputError(expected_found(f"masks of {id_}", f"the image size {img.shape[:2]}", f"{labels.shape}"))
    median = median_nucleus_area(labels.astype(np.int32))
    s = image_scale(median, target_area)
    img, lab, tgt = rescale_sample(img, labels, s, border)
    return img, lab, tgt, s, float(median or 0.0)


def _cache_meta(ids: Sequence[str], target_area: float, border: BorderParams) -> str:
    return json.dumps({"version": CACHE_VERSION, "ids": list(ids), "target_area": float(target_area),
                       "border": border.to_dict(), "s_range": [S_MIN, S_MAX]}, sort_keys=True)


def _save_cache(path: Path, data: InstanceData, meta: str) -> None:
    shapes = np.array([im.shape[:2] for im in data.images], np.int64).reshape(-1, 2)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh, meta=np.array(meta), shapes=shapes, scales=data.scales, median_areas=data.median_areas,
            images=np.concatenate([im.reshape(-1) for im in data.images]),
            labels=np.concatenate([lab.reshape(-1) for lab in data.labels]).astype(np.int32),
            targets=np.concatenate([(t[0] | (t[1] << 1)).reshape(-1) for t in data.targets]))


def _load_cache(path: Path, meta: str, ids: Sequence[str]) -> InstanceData | None:
    try:
        z = np.load(path, allow_pickle=False)
        if str(z["meta"]) != meta:
            return None
        shapes, images, labels, packed = z["shapes"], z["images"], z["labels"], z["targets"]
        scales, medians = z["scales"], z["median_areas"]
    except (OSError, KeyError, ValueError):
        return None
    out = InstanceData(list(ids), [], [], [], scales, medians)
    o = 0
    for h, w in shapes.tolist():
        n = h * w
        out.images.append(images[3 * o:3 * (o + n)].reshape(h, w, 3))
        out.labels.append(labels[o:o + n].reshape(h, w))
        p = packed[o:o + n].reshape(h, w)
        out.targets.append(np.stack([p & 1, (p >> 1) & 1]).astype(np.uint8))
        o += n
    return out


def build_instance_data(stage1_train: str | Path, ids: Sequence[str], target_area: float = DEFAULT_TARGET_AREA,
                        border: BorderParams | None = None, cache: str | Path | None = None,
                        progress: bool = True, replace_stale: bool = True) -> InstanceData:
    """All `ids` rescaled with their targets; read from / written to the .npz `cache` when given. With
    `replace_stale` False, a file at `cache` that is not a cache of these ids and parameters is refused, not
    replaced (a path the user named may hold something else)."""
    border = border or BorderParams()
    ids = list(ids)
    if not ids:
        raise InputError(expected_found("ids to load", "at least one id", "an empty list"))
    meta = _cache_meta(ids, target_area, border)
    if cache is not None and Path(cache).is_file():
        data = _load_cache(Path(cache), meta, ids)
        if data is not None:
            return data
        if not replace_stale:
            raise OutputError(expected_found(f"training data cache {cache}", "a cache of these ids and parameters",
                                             "another file", "Name a new path, or remove that file yourself."))
    stage1_train = Path(stage1_train)
    rows = [load_sample(stage1_train, i, target_area, border)
            for i in tqdm(ids, desc="load instances", unit="img", disable=not progress)]
    data = InstanceData(ids, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                        np.array([r[3] for r in rows], np.float64), np.array([r[4] for r in rows], np.float64))
    if cache is not None:
        _save_cache(Path(cache), data, meta)
    return data


def crop_window(arr: np.ndarray, y0: int, x0: int, c: int) -> np.ndarray:
    """arr[y0:y0+c, x0:x0+c] (leading axes H, W), padded by reflection at the bottom/right where it runs out."""
    win = arr[y0:y0 + c, x0:x0 + c]
    ph, pw = c - win.shape[0], c - win.shape[1]
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (arr.ndim - 2)
        win = np.pad(win, pad, mode="symmetric")
    return win


def random_crop(img: np.ndarray, targets: np.ndarray, rng: np.random.Generator, size: int,
                jitter: tuple[float, float], fg_bias: float = FG_BIAS) -> tuple[np.ndarray, np.ndarray]:
    """A size x size crop at a jittered scale: (BGR uint8 image, float32 (2, size, size) targets).

    With probability `fg_bias` the crop is placed to contain a random foreground pixel (many images are mostly
    background), else uniformly.
    """
    j = math.exp(rng.uniform(math.log(jitter[0]), math.log(jitter[1]))) if jitter[0] < jitter[1] else jitter[0]
    c = max(8, round(size / j))
    h, w = img.shape[:2]
    y0 = int(rng.integers(0, max(h - c, 0) + 1))
    x0 = int(rng.integers(0, max(w - c, 0) + 1))
    u, oy, ox = rng.random(), int(rng.integers(0, c)), int(rng.integers(0, c))
    if u < fg_bias:
        fg = np.flatnonzero(targets[0])
        if fg.size:
            py, px = divmod(int(fg[int(rng.integers(0, fg.size))]), w)
            y0, x0 = min(max(py - oy, 0), max(h - c, 0)), min(max(px - ox, 0), max(w - c, 0))
    im = crop_window(img, y0, x0, c)
    tg = crop_window(np.moveaxis(targets, 0, -1), y0, x0, c).astype(np.float32)
    if c != size:
        im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA if c > size else cv2.INTER_LINEAR)
        tg = cv2.resize(tg, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(im), np.ascontiguousarray(np.moveaxis(tg, -1, 0))


def nucleus_counts(data: InstanceData) -> np.ndarray:
    """Nuclei per image (distinct ids in its label image at its scale)."""
    return np.array([max(len(np.unique(lab)) - 1, 0) for lab in data.labels], np.int64)


def crops_per_image(data: InstanceData, crop_area: float | None, max_crops: int = 16,
                    crop_nuclei: float | None = None) -> np.ndarray:
    """How many crops each image gives per epoch: 1 each (crop_area None), else ceil(H * W / crop_area) at its
    scale, plus ceil(nuclei / crop_nuclei) when given (crowded images give more crops), clipped to
    [1, max_crops], so large and crowded images are not under-sampled."""
    if crop_area is None:
        return np.ones(len(data), np.int64)
    px = np.array([lab.size for lab in data.labels], np.float64)
    want = np.ceil(px / float(crop_area))
    if crop_nuclei is not None:
        want = want + np.ceil(nucleus_counts(data) / float(crop_nuclei))
    return np.clip(want, 1, max_crops).astype(np.int64)


class InstanceCropDataset(Dataset):
    """Indexed by (epoch, k): a random, augmented crop of image owners[k] from generators derived from
    (seed, epoch, k); by default owners = range(len(data)), one crop per image per epoch."""

    def __init__(self, data: InstanceData, seed: int, size: int = 96, jitter: tuple[float, float] = (0.8, 1.25),
                 modality: ModalityParams | AppearanceV2 | None = None, cfg: PreprocessConfig | None = None,
                 crops: np.ndarray | None = None) -> None:
        # Crops read images and targets only: without the labels the dataset is lighter to hand to worker processes.
        self.data = InstanceData(data.ids, data.images, [], data.targets, data.scales, data.median_areas)
        self.seed, self.size, self.jitter = int(seed), int(size), tuple(jitter)
        self.modality, self.cfg = modality, cfg or PreprocessConfig()
        counts = np.ones(len(data), np.int64) if crops is None else np.asarray(crops, np.int64)
        self.owners = np.repeat(np.arange(len(data)), counts)

    def __len__(self) -> int:
        return len(self.owners)

    def sample(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The crop as arrays: BGR uint8 (size, size, 3) and float32 (2, size, size)."""
        rng = np.random.default_rng(seed_sequence(self.seed, epoch, STREAM_CROP, k))
        i = int(self.owners[k])
        img, tgt = random_crop(self.data.images[i], self.data.targets[i], rng, self.size, self.jitter)
        if isinstance(self.modality, AppearanceV3):
            img, tgt = augment_crop_v3(img, tgt, rng, self.modality)
        elif isinstance(self.modality, AppearanceV2):
            img, tgt = augment_crop_v2(img, tgt, rng, self.modality)
        elif self.modality is not None:
            img, tgt = augment_crop(img, tgt, rng, self.modality)
        return img, tgt

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        img, tgt = self.sample(*key)
        return torch.from_numpy(normalize(img, self.cfg)), torch.from_numpy(np.ascontiguousarray(tgt))


@dataclass
class HeldOutViews:
    """Fixed views of held-out images: inputs (N, 3, S, S), targets (N, 2, S, S), labels and valid sizes."""

    x: torch.Tensor
    y: torch.Tensor
    labels: list[np.ndarray]
    valid: list[tuple[int, int]]


def heldout_views(data: InstanceData, size: int = 160, cfg: PreprocessConfig | None = None) -> HeldOutViews:
    """One centre crop of side `size` (a multiple of 16) per image at its scale; smaller images are zero-padded at
    the bottom/right and only their valid part is scored."""
    if size % 16:
        raise InputError(expected_found("held-out view size", "a multiple of 16", size))
    cfg = cfg or PreprocessConfig()
    xs, ys, labels, valid = [], [], [], []
    for img, lab, tgt in zip(data.images, data.labels, data.targets):
        h, w = lab.shape
        vh, vw = min(h, size), min(w, size)
        y0, x0 = (h - vh) // 2, (w - vw) // 2
        im = np.zeros((size, size, 3), np.uint8)
        im[:vh, :vw] = img[y0:y0 + vh, x0:x0 + vw]
        tg = np.zeros((2, size, size), np.float32)
        tg[:, :vh, :vw] = tgt[:, y0:y0 + vh, x0:x0 + vw]
        xs.append(torch.from_numpy(normalize(im, cfg)))
        ys.append(torch.from_numpy(tg))
        labels.append(np.ascontiguousarray(lab[y0:y0 + vh, x0:x0 + vw]))
        valid.append((vh, vw))
    return HeldOutViews(torch.stack(xs), torch.stack(ys), labels, valid)
