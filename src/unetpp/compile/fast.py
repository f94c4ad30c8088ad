"""The default runtime: the fastest one whose accuracy was verified, built once per model and cached.

For a checkpoint (the shipped models included) on the CPU, `unetpp predict`, `serve` and `unetpp.load()` run the
model's int8 OpenVINO IR when its DSB2018 mAP on a fixed set of 36 train images (`weights/guard/`, never val) passes
the check's rule (`passes`, stated by `rule_text`): the fp32 pipeline scores at least MIN_MAP_FP32 there (a pipeline
that finds nothing verifies nothing), the drop of int8 against fp32 less two standard errors of the paired per-image
differences is at most MAX_MAP_DROP (0.005), and the drop itself at most twice that (0.010); otherwise fp32 (ONNX
Runtime, the reference), and they say so. The int8 pipeline runs the scale rule's first pass in int8 too
(compile/first_pass.py); the check compares whole pipelines. Without OpenVINO the same check decides between ONNX
Runtime's QDQ int8 and fp32, with one note on stderr. The int8 file, its calibration (the windows those images give
at the model's own scale) and the check's result are kept in the model cache under the model's SHA-256 (and depth),
so the build and the check run once; each file is recorded with its SHA-256 (model/cache_entries.py) and one that
is missing, changed or unreadable is built again. The shipped models' builds and check records ship with the
package (weights/builds/, `make builds`): they are used while the installed checkpoint is the one they were built
from (model/shipped_builds.py), so first use of a shipped model builds nothing.

`--backend` / `--precision` choose any runtime explicitly; `UNETPP_DEFAULT_RUNTIME=fp32` makes today's ONNX
Runtime fp32 the default again; `UNETPP_NO_OPENVINO=1` behaves as if OpenVINO were not installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import ensure_dir, file_sha256
from unetpp.errors import InputError, expected_found
from unetpp.model.cache_entries import (
    artefact_files,
    build_lock,
    damage,
    file_hashes,
    read_signed_json,
    write_signed_json,
)
from unetpp.model.shipped_builds import find_shipped
from unetpp.model.sources import WEIGHTS, fast_build_dir, is_checkpoint, model_source

GUARD_DIR = WEIGHTS / "guard"
# The check's rule (passes): drop - SE_MULTIPLE * SE <= MAX_MAP_DROP, drop <= DROP_CAP_FACTOR * MAX_MAP_DROP and
# map_fp32 >= MIN_MAP_FP32. 2 SE: the 36 check images measure a drop with a standard error (0.0034) about as large as
# the allowance (bench/results/int8_check.md); the cap keeps a noisy set from passing a large drop; a reference
# below 0.1 (the shipped instance model scores 0.57 there, a random-weight one 0) leaves nothing to compare.
MAX_MAP_DROP = 0.005
SE_MULTIPLE = 2
DROP_CAP_FACTOR = 2
MIN_MAP_FP32 = 0.1
# One first-use build of the shipped instance model at depth 3 (first pass included) on a 2-core CPU: 172 s wall on a
# quiet machine (issue 27's fresh-cache run), 5.7 GB peak RSS (`make builds`, /usr/bin/time, 2026-12-07; 4.7
# CPU-minutes): what a checkpoint of one's own is told before its build (bench/results/first_use.md).
BUILD_SECONDS_MEASURED = 172
BUILD_PEAK_GB_MEASURED = 5.7
CALIB_LIMIT = 300  # calibration windows at most, evenly spread over the guard images' windows
INT8_SUFFIXES = {"openvino": ".xml", "onnxruntime": ".onnx"}
REFERENCE = "onnxruntime"  # the fp32 runtime: the fastest fp32 on the CPUs measured (bench/results/cpu_sweep)
ENV_DEFAULT = "UNETPP_DEFAULT_RUNTIME"  # fast (default) | fp32
ENV_NO_OPENVINO = "UNETPP_NO_OPENVINO"
PRECISIONS = ("fp32", "int8")
# 2: the model files carry the chosen seed post-processing (metadata.FACTS_VERSION 2); 3: the int8 pipeline's first
# pass runs the guide model in int8 too (compile/first_pass.py), and the check covers it; 4: 36 check images, the
# drop's standard error recorded and judged (passes); 5: the files' SHA-256 and the record's own, the rule's constants,
# the depth that ran
RECORD_VERSION = 5

Say = Callable[[str], None]
_SAID: set[str] = set()


def say_once(message: str) -> None:
    """One line on stderr, once per process for the same message."""
    if message not in _SAID:
        _SAID.add(message)
        print(f"unetpp: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RuntimeChoice:
    """What runs: the backend, the file it opens, its precision, and whether its accuracy was checked."""

    backend: str
    model: Path
    source: Path
    precision: str  # fp32 | int8 | "as the file" (an ONNX/IR/zoo file given as it is)
    verified: bool | None  # int8: passed the mAP check; None: fp32 (the reference) or a file given as it is
    reason: str
    depth: int | None = None
    check: dict[str, Any] | None = None
    first_pass: Path | None = None  # the int8 guide model of the `nuclei` rule's first pass (compile/first_pass.py)

    def describe(self) -> dict[str, Any]:
        """The record predict_summary.json, /v1/model and the page show: what ran and, for int8, the check's
        figures with the rule that judged them (`verdict`, `rule`)."""
        out: dict[str, Any] = {"runtime": self.backend, "precision": self.precision, "verified": self.verified,
                               "depth": self.depth, "reason": self.reason}
        if self.check:
            out["check"] = {k: self.check.get(k) for k in ("passed", "map_fp32", "map_int8", "map_drop",
                                                           "map_drop_se", "max_map_drop", "n_images", "set",
                                                           "date")}
            out["check"]["rule"] = self.check.get("rule") or check_rule(self.check.get("max_map_drop",
                                                                                       MAX_MAP_DROP))
            out["check"]["verdict"] = verdict_text(self.check)
            if self.check.get("shipped"):
                out["check"]["shipped"] = True
        if self.first_pass is not None:
            out["first_pass"] = f"{self.backend} int8 guide model ({self.first_pass.name})"
        return out

    def line(self) -> str:
        """One line for people: 'openvino int8, depth 3 (verified: mAP 0.5594 vs fp32 0.5671 on 36 train images,
        drop 0.0077 +/- 0.0034 (SE); passes when drop - 2 SE <= 0.005 and drop <= 0.010 and fp32 mAP >= 0.1)'."""
        text = f"{self.backend} {self.precision}"
        if self.depth is not None:
            text += f", depth {self.depth}"
        c = self.check
        if c and self.precision == "int8":
            text += f" ({'verified' if self.verified else 'NOT verified'}: {verdict_text(c)})"
        elif self.reason:
            text += f" ({self.reason})"
        return text


def rule_text(max_map_drop: float = MAX_MAP_DROP) -> str:
    """The check's rule in words, with its constants (`passes` applies it)."""
    return (f"passes when drop - {SE_MULTIPLE} SE <= {max_map_drop:.3f} and drop <= "
            f"{DROP_CAP_FACTOR * max_map_drop:.3f} and fp32 mAP >= {MIN_MAP_FP32:g}")


def check_rule(max_map_drop: float = MAX_MAP_DROP) -> dict[str, Any]:
    """The rule's constants as the check record keeps them."""
    return {"max_map_drop": max_map_drop, "se_multiple": SE_MULTIPLE,
            "max_map_drop_cap": round(DROP_CAP_FACTOR * max_map_drop, 6), "min_map_fp32": MIN_MAP_FP32,
            "text": rule_text(max_map_drop)}


def verdict_text(check: dict[str, Any]) -> str:
    """'mAP 0.5594 vs fp32 0.5671 on 36 train images, drop 0.0077 +/- 0.0034 (SE); passes when ...'."""
    se = float(check.get("map_drop_se") or 0.0)
    return (f"mAP {check['map_int8']:.4f} vs fp32 {check['map_fp32']:.4f} on {check['n_images']} train images, "
            f"drop {check['map_drop']:.4f} +/- {se:.4f} (SE); "
            f"{rule_text(float(check.get('max_map_drop', MAX_MAP_DROP)))}")


def export_depth(path: Path, asked: int | None) -> int | None:
    """The depth a checkpoint's cached fp32 export runs at (its export record says), else the one asked for."""
    if asked is not None or Path(path).suffix.lower() != ".onnx":
        return asked
    try:
        record = json.loads(Path(f"{path}.parity.json").read_text())
    except (OSError, ValueError):
        return None
    found = record.get("depth") if isinstance(record, dict) else None
    return int(found) if isinstance(found, int) else None


def openvino_available() -> bool:
    """OpenVINO and NNCF importable, unless UNETPP_NO_OPENVINO is set (to run the fallback on purpose)."""
    if os.environ.get(ENV_NO_OPENVINO, "").strip() not in ("", "0"):
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def guard_set() -> list[tuple[str, Path, Path]]:
    """(id, image, labels) of the shipped check set (weights/guard: train ids only, see its SOURCE.md)."""
    labels = sorted(GUARD_DIR.glob("*_labels.png"))
    out = [(p.name[: -len("_labels.png")], p.with_name(p.name.replace("_labels.png", ".png")), p) for p in labels]
    out = [t for t in out if t[1].is_file()]
    if not out:
        raise InputError(expected_found("the accuracy-check set", f"images and labels in {GUARD_DIR}", "none",
                                        "Reinstall unetpp, or pass --precision fp32"))
    return out


def guard_set_id() -> str:
    """A short hash of the check set's files: a changed set makes every cached check stale."""
    h = hashlib.sha256()
    for id_, img, lab in guard_set():
        h.update(id_.encode())
        h.update(file_sha256(img).encode())
        h.update(file_sha256(lab).encode())
    return h.hexdigest()[:16]


def choose_runtime(model: str | Path | None = "instance", backend: str | None = None, precision: str | None = None,
                   depth: int | None = None, device: str | None = None, openvino: bool | None = None,
                   say: Say = say_once, max_map_drop: float = MAX_MAP_DROP,
                   threads: int | None = None) -> RuntimeChoice:
    """The runtime and file for `model` (see the module's text). `openvino` None: whether it is installed."""
    from unetpp.runtimes import resolve_model

    if precision is not None and precision not in PRECISIONS:
        raise InputError(expected_found("--precision", " or ".join(PRECISIONS), repr(precision)))
    source = model_source(model)
    if precision == "int8" and not is_checkpoint(source):
        raise InputError(expected_found("--precision int8", "a checkpoint (.pt/.pth) to build the int8 model from",
                                        source.name, "Use `unetpp compile` for another file"))
    if precision == "int8" and (backend not in (None, *INT8_SUFFIXES) or device == "cuda"):
        raise InputError(expected_found("--precision int8", "--backend openvino or onnxruntime on the CPU",
                                        f"--backend {backend} --device {device or 'cpu'}"))

    def plain(reason: str, b: str | None = backend, check: dict[str, Any] | None = None,
              verified: bool | None = None) -> RuntimeChoice:
        b, path = resolve_model(source, b, depth=depth)
        prec = "fp32" if is_checkpoint(source) else "as the file"
        return RuntimeChoice(b, path, source, prec, verified, reason, export_depth(path, depth), check)

    if not is_checkpoint(source):
        return plain("a model file runs as it is")
    if precision == "fp32":
        return plain("--precision fp32", backend or REFERENCE)
    if precision is None:
        if backend is not None:
            return plain(f"--backend {backend}")
        if device == "cuda":
            return plain("--device cuda: fp32", REFERENCE)
        if os.environ.get(ENV_DEFAULT, "").strip().lower() == "fp32":
            return plain(f"{ENV_DEFAULT}=fp32", REFERENCE)
    if depth is not None:  # the pruned fp32 reference (cached): a depth the model cannot run at is refused first
        resolve_model(source, REFERENCE, depth=depth)
    ov = openvino_available() if openvino is None else openvino
    target = backend or ("openvino" if ov else "onnxruntime")
    if backend is None and not ov:
        say("OpenVINO is not installed: the default runtime is ONNX Runtime (int8 where it passes its accuracy "
            "check, else fp32); pip install 'unetpp[openvino]' for the fastest one")
    try:
        path, check = int8_build(source, target, depth, say=say, max_map_drop=max_map_drop, threads=threads)
    except Exception as exc:  # noqa: BLE001 - the default must still run: a failed build falls back to fp32
        if precision == "int8":
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        say(f"the int8 {target} model of {source.name} could not be built ({first}): running fp32")
        return plain("the int8 build failed", REFERENCE)
    first = Path(check["first_pass"]["model"]) if check.get("first_pass") else None
    ran = depth if depth is not None else check.get("model_depth")
    if precision == "int8":
        if not check["passed"]:
            say(f"the int8 {target} model of {source.name} did NOT pass its accuracy check ({verdict_text(check)}); "
                "running it because --precision int8 asks for it")
        return RuntimeChoice(target, path, source, "int8", bool(check["passed"]), "--precision int8", ran, check,
                             first)
    if check["passed"]:
        return RuntimeChoice(target, path, source, "int8", True, "the fastest verified runtime", ran, check, first)
    say(f"the int8 {target} model of {source.name} failed its accuracy check ({verdict_text(check)}): running fp32")
    return plain("int8 failed its accuracy check", REFERENCE, check)


def int8_build(source: Path, backend: str, depth: int | None = None, say: Say = say_once,
               max_map_drop: float = MAX_MAP_DROP, threads: int | None = None,
               shipped: bool = True) -> tuple[Path, dict[str, Any]]:
    """The int8 `backend` file of a checkpoint and its accuracy check: the shipped build where this checkpoint is
    a shipped one (`shipped`), else from the model cache, else built (once) now. A cached build whose files or
    record do not check is built again, with one line saying why."""
    sha = file_sha256(source)
    set_id = guard_set_id()
    if shipped:
        found = _shipped_int8(sha, backend, depth, set_id, say)
        if found is not None:
            return found[0], judged(found[1], max_map_drop)
    folder = fast_build_dir(source, depth, sha)
    artefact = folder / f"{backend}-int8{INT8_SUFFIXES[backend]}"
    record_path = folder / f"{backend}-int8.check.json"
    with build_lock(folder, say):
        cached, why = _cached_int8(folder, record_path, sha, set_id, depth, backend)
        if cached is not None:
            return artefact, judged(_attach_first_pass(cached, backend, threads, say, shipped), max_map_drop)
        images = guard_set()
        opening = (f"the cached int8 {backend} model of {source.name} is damaged ({why}): building it again" if why
                   else f"building the fast runtime for {source.name} once")
        say(f"{opening}: int8 {backend}, checked against fp32 on {len(images)} train images ({build_cost()}; cached "
            f"in {folder})")
        t0 = time.perf_counter()
        ensure_dir(folder)
        for stale in folder.glob(f".{artefact.stem}.compile-*"):  # a killed build's work folder (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        check = _build_and_check(source, backend, depth, artefact, images, threads, say, shipped)
        check.update(version=RECORD_VERSION, source=str(source), source_sha256=sha, set=set_id, depth=depth,
                     backend=backend, artefact=artefact.name, files=file_hashes(artefact_files(artefact)),
                     build_seconds=round(time.perf_counter() - t0, 1), date=time.strftime("%Y-%m-%d %H:%M:%S"))
        check = judged(check, max_map_drop)
        write_signed_json(record_path, check)
    return artefact, check


def build_cost() -> str:
    """How long and how much memory a first-use build takes, from the measured figures."""
    return (f"about {BUILD_SECONDS_MEASURED / 60:.0f} min and {BUILD_PEAK_GB_MEASURED:g} GB of memory for the shipped "
            "instance model on 2 CPU cores")


def _shipped_int8(sha: str, backend: str, depth: int | None, set_id: str,
                  say: Say) -> tuple[Path, dict[str, Any]] | None:
    """The shipped build of this checkpoint (weights/builds), its first pass resolved, or None."""
    from unetpp.compile.first_pass import shipped_first_pass

    def accept(entry: dict[str, Any]) -> bool:
        asked_ok = entry.get("depth_asked") is None if depth is None else entry.get("depth") == depth
        return asked_ok and entry.get("set") == set_id and entry.get("record_version") == RECORD_VERSION

    found, why = find_shipped("int8", sha, backend, accept)
    if why:
        say(f"{why}: building it in the model cache instead")
    if found is None:
        return None
    artefact, record = found
    record = {**record, "shipped": True}
    if record.get("first_pass"):
        first = shipped_first_pass(backend, record.get("ids") or [], say)
        if first is None:
            return None
        record["first_pass"] = {**record["first_pass"], "model": str(first[0])}
    return artefact, record


def _cached_int8(folder: Path, record_path: Path, sha: str, set_id: str, depth: int | None,
                 backend: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for a cached build whose record and files check; (None, why) for a damaged one; (None,
    None) for none (or one of an older unetpp, another check set or depth)."""
    record, why = read_signed_json(record_path)
    if record is None:
        return None, why
    if (record.get("version") != RECORD_VERSION or record.get("source_sha256") != sha or record.get("set") != set_id
            or record.get("depth") != depth or record.get("backend") != backend):
        return None, None
    why = damage(folder, record.get("files"))
    return (None, why) if why else (record, None)


def _attach_first_pass(record: dict[str, Any], backend: str, threads: int | None, say: Say,
                       shipped: bool) -> dict[str, Any]:
    """A cached record with its int8 first pass found (shipped, or cached and intact) or built again now."""
    from unetpp.compile.first_pass import first_pass_int8
    from unetpp.predict.imageio import read_image

    if not record.get("first_pass"):
        return record
    ids = list(record.get("ids") or [])
    files = {i: p for i, p, _ in guard_set()}

    def load() -> list[tuple[str, np.ndarray]]:
        return [(i, read_image(files[i])[0]) for i in ids if i in files]

    path, _ = first_pass_int8(backend, load, say, threads, shipped=shipped, ids=ids)
    return {**record, "first_pass": {**record["first_pass"], "model": str(path)}}


def _build_and_check(source: Path, backend: str, depth: int | None, artefact: Path,
                     images: list[tuple[str, Path, Path]], threads: int | None, say: Say,
                     shipped: bool = True) -> dict[str, Any]:
    """Calibrate on the check images' windows (as predict feeds them), build, then score the fp32 pipeline and
    the int8 one there (for a model whose scale rule measures nuclei with the guide model, that first pass in int8
    too: compile/first_pass.py)."""
    from unetpp.compile.api import compile_model
    from unetpp.compile.first_pass import first_pass_int8
    from unetpp.eval.instance_io import read_label_image
    from unetpp.predict.image import PredictOptions
    from unetpp.predict.imageio import read_image
    from unetpp.predict.work import resolve_mode, uses_guide_first_pass
    from unetpp.runtimes import get_runtime, open_runtime

    pictures = [(id_, read_image(img)[0], read_label_image(lab)) for id_, img, lab in images]
    flags = {"threads": threads} if threads else {}
    first: tuple[Path, dict[str, Any]] | None = None
    with open_runtime(source, REFERENCE, depth=depth, **flags) as fp32:
        if uses_guide_first_pass(fp32, resolve_mode(PredictOptions(), fp32.metadata)):
            first = first_pass_int8(backend, [(i, p) for i, p, _ in pictures], say, threads, shipped=shipped)
        model_depth = (fp32.metadata or {}).get("depth")
        samples = calibration_windows([(i, p) for i, p, _ in pictures], fp32)
        labels_fp32 = predict_labels([(i, p) for i, p, _ in pictures], fp32)
    compile_model(source, backend, artefact, int8=True, samples=samples, depth=depth)
    with get_runtime(backend, artefact, **flags) as int8:
        int8.first_pass_model = first[0] if first else None
        labels_int8 = predict_labels([(i, p) for i, p, _ in pictures], int8)
    truth = {i: t for i, _, t in pictures}
    ap_fp32, ap_int8 = (_image_aps(labels, truth) for labels in (labels_fp32, labels_int8))
    drops = ap_fp32 - ap_int8
    map_fp32, map_int8 = round(float(ap_fp32.mean()), 6), round(float(ap_int8.mean()), 6)
    out = {"map_fp32": map_fp32, "map_int8": map_int8, "map_drop": map_fp32 - map_int8,
           "map_drop_se": round(float(drops.std(ddof=1) / np.sqrt(drops.size)), 6) if drops.size > 1 else 0.0,
           "n_images": len(pictures), "ids": [i for i, _, _ in pictures], "n_calibration_windows": len(samples),
           "model_depth": model_depth}
    if first:
        out["first_pass"] = {"model": str(first[0]), **{k: first[1].get(k) for k in (
            "median_abs_log_ratio", "max_abs_log_ratio", "n_calibration_inputs")}}
    return out


def _image_aps(labels: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> np.ndarray:
    """Each check image's DSB2018 score (their mean is the set's mAP), in `truth`'s order."""
    from unetpp.eval.instance_metrics import instance_score

    return np.array([instance_score(labels[i], truth[i]).ap for i in truth], np.float64)


def passes(check: dict[str, Any], max_map_drop: float = MAX_MAP_DROP) -> bool:
    """The check's rule (rule_text): the fp32 pipeline scores at least MIN_MAP_FP32 on the check images (a pipeline
    that finds nothing there verifies nothing), its drop less SE_MULTIPLE (2) standard errors of the paired
    per-image differences is at most the allowance (0.005), and the drop itself at most DROP_CAP_FACTOR (2) times
    the allowance (0.010).

    A check set small enough to ship measures a drop with an error about as large as the allowance itself (36
    images: standard error 0.0034; bench/results/int8_check.md): the plain rule (drop <= allowance) failed an
    int8 model whose drop on 102 other selection images was -0.0002, on the strength of two images."""
    fp32 = check.get("map_fp32")
    if fp32 is None or not float(fp32) >= MIN_MAP_FP32:
        return False
    drop, se = float(check["map_drop"]), float(check.get("map_drop_se") or 0.0)
    return drop <= DROP_CAP_FACTOR * max_map_drop and drop - SE_MULTIPLE * se <= max_map_drop


def judged(check: dict[str, Any], max_map_drop: float = MAX_MAP_DROP) -> dict[str, Any]:
    """The check's figures judged against `max_map_drop`, the rule's constants recorded beside the verdict."""
    return {**check, "max_map_drop": max_map_drop, "rule": check_rule(max_map_drop),
            "passed": passes(check, max_map_drop)}


def calibration_windows(pictures: list[tuple[str, np.ndarray]], runtime: Any,
                        limit: int = CALIB_LIMIT) -> list[np.ndarray]:
    """The normalised windows `unetpp predict` feeds the model for these images (its own mode and scale rule),
    at most `limit`, evenly spread."""
    from unetpp.predict.image import PredictOptions
    from unetpp.predict.work import PredictItem, work_for

    work = work_for(runtime, PredictOptions())
    windows: list[np.ndarray] = []
    for id_, img in pictures:
        _, units = work.prepare(PredictItem(id_, image=img))
        windows += [w for chunk in units for w in chunk]
    if len(windows) > limit:
        idx = np.linspace(0, len(windows) - 1, limit).round().astype(int)
        windows = [windows[i] for i in sorted(set(idx.tolist()))]
    return [np.ascontiguousarray(w, np.float32) for w in windows]


def predict_labels(pictures: list[tuple[str, np.ndarray]], runtime: Any) -> dict[str, np.ndarray]:
    """id -> labels of `unetpp predict`'s default options for each image, on an active runtime."""
    from unetpp.core.driver import DriverSettings, run_pipeline
    from unetpp.predict.image import PredictOptions
    from unetpp.predict.work import PredictItem, work_for

    options = PredictOptions()
    work = work_for(runtime, options)
    result = run_pipeline([PredictItem(i, image=p) for i, p in pictures], work, runtime,
                          DriverSettings(batch_size=options.batch, warmup=0, resume=False))
    if result.failures:
        raise InputError(result.failures[0]["error"])
    return {rec["stem"]: rec["result"]["labels"] for rec in result.records}


def open_choice(choice: RuntimeChoice, **options: Any) -> Any:
    """The (inactive) runtime for a choice, carrying it (runtime.selection) into summaries and /v1/model."""
    from unetpp.runtimes import get_runtime, runtime_class

    if choice.depth is not None and "depth" in runtime_class(choice.backend).OPTIONS:  # torch runs the checkpoint
        options = {**options, "depth": choice.depth}
    runtime = get_runtime(choice.backend, choice.model, **options)
    runtime.selection = choice.describe()
    runtime.first_pass_model = choice.first_pass
    return runtime
