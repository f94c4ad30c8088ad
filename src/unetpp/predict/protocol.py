"""How a model predicts, in one typed place: resolved once from what its model file says about itself
(model/metadata.py: its scale rule, seed parameters, output channels and depth), then given a call's options.

    protocol = PredictProtocol.of_model(runtime.metadata, runtime.outputs)   # the model's own
    applied = protocol.apply(options)                                         # what one call runs

An option left at None means "the model's own". An explicit value acts on the parameter that decides for that
model, or is refused with one line saying why:
- the instance model (foreground + border channels) splits nuclei by seeds (predict/seeds.py, `SeedPost`):
  `threshold` is the seeds' foreground threshold t_fg, `min_area` their minimum nucleus area (in the image's
  pixels; the model's own is in model-input pixels and follows each image's scale);
- a foreground-only model (the guide's) splits its probability mask by a distance transform
  (predict/instances.py, `DistancePost`): `threshold` is the probability threshold, `min_area` the minimum area.
The first pass of the `nuclei` scale rule measures nuclei with its own fixed labelling for a model with a border
channel (the guide model's defaults), so these options never move the scale of the instance model's images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.predict import scale as scale_rules
from unetpp.predict.instances import DEFAULT_MIN_AREA, label_nuclei
from unetpp.predict.seeds import SeedParams, labels_from_body_border

DEFAULT_THRESHOLD = 0.5  # a foreground-only model's probability threshold (the guide's decision, prob >= 0.5)
MODES = ("tile", "resize")


def foreground(maps: np.ndarray, outputs: list[str]) -> np.ndarray:
    """The foreground probability among a model's (C, H, W) output maps."""
    return maps[outputs.index("foreground")] if "foreground" in outputs else maps[0]


@dataclass(frozen=True)
class DistancePost:
    """A foreground-only model: nuclei = the mask prob >= threshold, components under min_area px dropped, split by
    a distance-transform cut (`split`; else connected components)."""

    threshold: float = DEFAULT_THRESHOLD
    min_area: int = DEFAULT_MIN_AREA
    split: bool = True
    kind: ClassVar[str] = "distance"

    def split_maps(self, maps: np.ndarray, outputs: list[str], scale: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(mask: every pixel over the threshold, specks included; labels)."""
        mask = foreground(maps, outputs) >= self.threshold
        return mask, label_nuclei(mask, self.min_area, self.split)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind if self.split else "components", "threshold": self.threshold,
                "min_area": self.min_area, "min_area_in": "image pixels"}


@dataclass(frozen=True)
class SeedPost:
    """A model with a border channel: seeds inside the bodies grown by a watershed, with `params` (the model's
    own, chosen on the selection set, areas in model-input pixels: converted per image by 1/scale^2). An explicit
    `min_area_px` (image pixels) replaces the converted min_area."""

    params: SeedParams
    min_area_px: int | None = None
    kind: ClassVar[str] = "seeds"

    def image_params(self, scale: float | None) -> SeedParams:
        """The parameters at an image's own pixels (the model ran at `scale` x the image)."""
        at = self.params.at_scale(scale)
        return at if self.min_area_px is None else dataclasses.replace(at, min_area=self.min_area_px)

    def split_maps(self, maps: np.ndarray, outputs: list[str], scale: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(mask: the nuclei's pixels; labels)."""
        labels = labels_from_body_border(foreground(maps, outputs), maps[outputs.index("border")],
                                         self.image_params(scale))
        return labels > 0, labels

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, **self.params.to_dict()}
        if self.min_area_px is None:
            d["min_area_in"] = "model-input pixels (x 1/scale^2 in each image)"
        else:
            d.update(min_area=self.min_area_px, min_area_in="image pixels")
        d["min_seed_area_in"] = "model-input pixels (x 1/scale^2 in each image)"
        return d


PostProcessing = SeedPost | DistancePost


@dataclass(frozen=True)
class FirstPassLabelling:
    """How the `nuclei` scale rule's first pass labels the nuclei it measures."""

    threshold: float = DEFAULT_THRESHOLD
    min_area: int = DEFAULT_MIN_AREA
    split: bool = True


@dataclass(frozen=True)
class PredictProtocol:
    """Everything that decides how a model predicts an image (besides the image and the runtime's numerics).

    mode: tile (rescale by `scale_rule`, windows) or resize (the guide's: squeeze to the model's size);
    scale_rule: tile mode's rule (scale.parse_scale: fit, area, nuclei@A or a factor);
    first_pass: who measures the nuclei for a `nuclei` rule: "guide" (the shipped guide model, for a model with a
    border channel), "self" (the model's own inactive copy) or None (no first pass);
    free_windows: tile mode plans the fewest computed pixels on the model's free height/width (its own scale rule,
    or an explicit window) instead of its own fixed size;
    post: the post-processing (SeedPost | DistancePost); depth: the UNet++ output depth the model file runs at
    (None: not a deeply supervised model, or not recorded)."""

    mode: str
    scale_rule: str | float
    first_pass: str | None
    free_windows: bool
    post: PostProcessing
    first_pass_labelling: FirstPassLabelling
    depth: int | None
    outputs: tuple[str, ...]
    declared_rule: str | None = None  # the model's own scale rule (its metadata), None for a model without one
    seed_params: SeedParams | None = None  # a border model's own (kept for apply)

    @classmethod
    def of_model(cls, metadata: dict[str, Any] | None, outputs: list[str] | tuple[str, ...]) -> PredictProtocol:
        """The model's own protocol, from its file's metadata (model/metadata.py) and its output channels."""
        meta = metadata or {}
        declared = (meta.get("scale") or {}).get("rule")
        outputs = tuple(outputs or ("foreground",))
        seeds = SeedParams.from_dict(meta.get("seed_params") or {}) if "border" in outputs else None
        depth = meta.get("depth")
        own = cls(mode="tile" if declared else "resize",
                  scale_rule=str(declared) if declared else scale_rules.AUTO_RULE,
                  first_pass=None, free_windows=bool(declared), post=SeedPost(seeds) if seeds else DistancePost(),
                  first_pass_labelling=FirstPassLabelling(), depth=int(depth) if depth is not None else None,
                  outputs=outputs, declared_rule=str(declared) if declared else None, seed_params=seeds)
        return dataclasses.replace(own, first_pass=own._first_pass_for(own.mode, own.scale_rule))

    def _first_pass_for(self, mode: str, rule: str | float) -> str | None:
        if mode != "tile" or not (isinstance(rule, str) and rule.startswith("nuclei")):
            return None
        return "guide" if "border" in self.outputs else "self"

    def apply(self, options: Any) -> PredictProtocol:
        """This protocol with a call's options (predict/image.py's PredictOptions): None/"auto" keep the model's
        own; an explicit value acts on the parameter that decides for this model."""
        mode = self.mode if options.mode == "auto" else options.mode
        if mode not in MODES:
            raise InputError(expected_found("--mode", "auto, tile or resize", repr(options.mode)))
        self._refuse_idle(mode, options)
        rule = self.scale_rule if options.scale == "auto" else scale_rules.parse_scale(options.scale)
        post = self._post(options)
        if "border" in self.outputs or not isinstance(post, DistancePost):
            first = FirstPassLabelling()  # the guide's own labelling, whatever the instance model's options
        else:
            first = FirstPassLabelling(post.threshold, post.min_area, post.split)  # the model measures itself
        return dataclasses.replace(self, mode=mode, scale_rule=rule, first_pass=self._first_pass_for(mode, rule),
                                   post=post, first_pass_labelling=first,
                                   free_windows=bool(self.declared_rule) or options.window is not None)

    @staticmethod
    def _refuse_idle(mode: str, options: Any) -> None:
        """An option that would do nothing in this mode is refused rather than ignored."""
        given = [flag for flag, idle in (("--scale", options.scale != "auto"), ("--window", options.window is not None))
                 if idle]
        if mode == "resize" and given:
            raise InputError(expected_found(
                given[0], "tile mode (resize squeezes the whole image to the model's size: no scale, no windows)",
                f"{given[0]} with --mode resize", "drop it, or give --mode tile"))

    def _post(self, options: Any) -> PostProcessing:
        threshold, min_area = options.threshold, options.min_area
        if self.seed_params is not None and options.split:
            params = self.seed_params if threshold is None else dataclasses.replace(self.seed_params, t_fg=threshold)
            return SeedPost(params, min_area)
        return DistancePost(DEFAULT_THRESHOLD if threshold is None else threshold,
                            DEFAULT_MIN_AREA if min_area is None else min_area, bool(options.split))

    def to_dict(self) -> dict[str, Any]:
        """What summaries, serve responses, /v1/model and napari show: the values applied."""
        return {"mode": self.mode, "scale_rule": self.scale_rule, "first_pass": self.first_pass,
                "windows": "free (fewest computed pixels)" if self.free_windows else "the model's own size",
                "postprocess": self.post.to_dict(), "depth": self.depth, "outputs": list(self.outputs)}


def applied_line(applied: dict[str, Any]) -> str:
    """One line of what ran, from PredictProtocol.to_dict(): mode, scale rule, post-processing values, depth."""
    post = applied.get("postprocess") or {}
    if post.get("kind") == "seeds":
        unit = "image px" if post.get("min_area_in") == "image pixels" else "model px"
        what = f"seeds t_fg {post.get('t_fg')}, min area {post.get('min_area')} {unit}"
    else:
        what = f"{post.get('kind')} threshold {post.get('threshold')}, min area {post.get('min_area')} px"
    rule = f" {applied.get('scale_rule')}" if applied.get("mode") == "tile" else ""
    depth = f", depth {applied['depth']}" if applied.get("depth") is not None else ""
    return f"{applied.get('mode')}{rule}; {what}{depth}"
