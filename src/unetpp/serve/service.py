"""What the server holds (one runtime, one batcher) and how one segmented image becomes a response or ZIP entries."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.errors import InputError, OutputError
from unetpp.predict.image import PredictOptions, output_paths, write_outputs
from unetpp.predict.protocol import applied_line
from unetpp.predict.table import counts_csv
from unetpp.report.overlay import draw_overlay
from unetpp.serve.batcher import Batcher
from unetpp.serve.inputs import Limits
from unetpp.serve.metrics import Metrics

TASKS = {"border": "nuclei segmentation (UNet++, foreground + border), instances from seeds and a watershed",
         "foreground": "nuclei segmentation (UNet++), instances by a distance-transform split"}
FAILURES_HEADER = ["name", "status", "error", "expected", "found"]


@dataclass(frozen=True)
class ServeSettings:
    """Everything `unetpp serve` was started with (picklable: Ray Serve replicas get a copy)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = "instance"
    backend: str | None = None
    threads: int | None = None
    precision: str | None = None  # None: the fastest verified runtime (compile/fast.py); fp32 | int8
    depth: int | None = None  # None: the model's own default depth
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    timeout_s: float = 60.0
    max_queue: int = 256  # images waiting or running, across requests; beyond it a request gets 429
    batch_size: int = 16
    max_wait_ms: float = 5.0
    save_dir: str | None = None


def png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OutputError("cannot encode a PNG")
    return buf.tobytes()


def _accuracy(card: dict[str, Any]) -> dict[str, Any]:
    """The model card's published figures, as /v1/model and the page show them."""
    return {"split": card.get("split"), "summary": card.get("summary"), **(card.get("figures") or {}),
            "source": card.get("source")}


class Service:
    """The runtime, its batcher, the model's identity and the optional --save folder."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.batcher: Batcher | None = None
        self.identity: dict[str, Any] = {}
        self.card: dict[str, Any] = {}
        self._saved = itertools.count(1)

    @property
    def ready(self) -> bool:
        return self.batcher is not None and self.batcher.ready

    def start(self) -> None:
        """Open the model (the shipped one by default), warm it, start the batch driver."""
        from unetpp.api import load
        from unetpp.core.outputs import folder_problem
        from unetpp.model.cards import card_for

        s = self.settings
        if s.save_dir:
            problem = folder_problem(s.save_dir, "serve")
            if problem:
                raise InputError(f"--save: {problem}")
            Path(s.save_dir).mkdir(parents=True, exist_ok=True)
        # the one door (unetpp.load), with serve's default options: tile mode unless a request says otherwise
        model = load(s.model, s.backend, threads=s.threads, precision=s.precision, depth=s.depth, mode="tile")
        runtime = model.runtime
        batcher = Batcher(runtime, self.metrics, s.batch_size, s.max_wait_ms)
        batcher.start()
        self.identity = model.identity
        source_sha = self.identity["source_sha256"] or self.identity["sha256"]
        card = card_for(model.choice.source, source_sha)  # the figures of this very file, if it is a shipped model
        shipped = card[0] if card else None
        self.card = {**self.identity, "shipped": shipped is not None, "shipped_name": shipped,
                     "input": list(runtime.input_shape),
                     "task": TASKS["border" if "border" in runtime.outputs else "foreground"],
                     "accuracy": _accuracy(card[1]) if card else None,
                     "batching": {"batch_size": s.batch_size, "max_wait_ms": s.max_wait_ms}}
        self.batcher = batcher

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()
            self.batcher.runtime.deactivate()

    # -- responses (run in a worker thread, never on the event loop) --------------------------------
    def response(self, stem: str, image: np.ndarray, options: PredictOptions, record: dict[str, Any],
                 timings: dict[str, float], include: list[str]) -> dict[str, Any]:
        """The JSON of one segmented image; `include` adds labels/mask/overlay PNGs in base64."""
        result = record["result"]
        applied = result["protocol"].to_dict()
        body: dict[str, Any] = {
            "image": {"name": stem, "height": record["height"], "width": record["width"]},
            "options": {"mode": options.mode, "scale": options.scale, "threshold": options.threshold,
                        "min_area": options.min_area, "overlap": options.overlap},
            "protocol": applied,  # the values applied (the model's own where not given), and in one line:
            "protocol_line": applied_line(applied),
            "nuclei": record["nuclei"], "foreground_px": record["foreground_px"],
            "scale": record.get("scale"), "n_tiles": record.get("n_tiles"),
            "table": {"columns": list(result["table"].columns), "rows": result["table"].rows},
            "model": self.identity, "timings": timings,
        }
        if include:
            files = self.files(image, result)
            body["png"] = {k: base64.b64encode(files[k]).decode("ascii") for k in include}
        return body

    def files(self, image: np.ndarray, result: dict[str, Any]) -> dict[str, bytes]:
        """labels (uint16), mask (0/255), overlay PNGs: the bytes `unetpp predict` writes for the same image."""
        labels = result["labels"]
        if labels.max(initial=0) > np.iinfo(np.uint16).max:
            raise OutputError("more than 65535 nuclei in one image (the labels PNG is uint16)")
        return {"labels": png(labels.astype(np.uint16)), "mask": png(result["mask"].astype(np.uint8) * 255),
                "overlay": png(draw_overlay(image, labels))}

    def zip_bytes(self, entries: list[tuple[str, np.ndarray, dict[str, Any]]],
                  failures: list[dict[str, Any]] | None = None) -> bytes:
        """(stem, image, record) per image → a ZIP of <stem>_labels.png, _mask.png, _nuclei.csv, _overlay.png and
        counts.csv (stems made unique); the files refused, if any, in failures.csv (name, status, error,
        expected, found)."""
        buf = io.BytesIO()
        names: list[str] = []
        used: set[str] = set()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for stem, image, record in entries:
                name, n = stem, 1
                while name in used:
                    n += 1
                    name = f"{stem}_{n}"
                used.add(name)
                files = self.files(image, record["result"])
                for kind in ("labels", "mask", "overlay"):
                    zf.writestr(f"{name}_{kind}.png", files[kind])
                zf.writestr(f"{name}_nuclei.csv", record["result"]["table"].to_csv())
                names.append(name)
            zf.writestr("counts.csv", counts_csv([record for _, _, record in entries], names))
            if failures:
                text = io.StringIO()
                fw = csv.writer(text, lineterminator="\n")
                fw.writerow(FAILURES_HEADER)
                fw.writerows([f.get(k, "") for k in FAILURES_HEADER] for f in failures)
                zf.writestr("failures.csv", text.getvalue())
        return buf.getvalue()

    def save(self, stem: str, image: np.ndarray, options: PredictOptions, record: dict[str, Any]) -> None:
        """--save DIR: the image's outputs as `unetpp predict --overlays` writes them, under a stem no file there
        has yet (time, process, counter): an existing file is never replaced."""
        if not self.settings.save_dir:
            return
        for _ in range(1000):
            unique = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(self._saved):06d}-{stem}"
            paths = output_paths(Path(self.settings.save_dir), unique, PredictOptions(overlay=True))
            if not any(os.path.lexists(p) for p in paths.values()):
                break
        else:
            raise OutputError(f"--save {self.settings.save_dir}: no free file name for {stem!r}")
        write_outputs(record["result"], paths, image)
