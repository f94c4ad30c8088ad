"""`unetpp compile`: the counterpart of the guide's `atc`: one deployable artefact per backend (and batch)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from unetpp.atomic import ensure_dir, file_sha256, write_json_atomic
from unetpp.compile import onnx_passes, ov_passes
from unetpp.compile.guard import AccuracyDropError, calibration_samples, compare
from unetpp.errors import InputError, OutputError, expected_found
from unetpp.model.metadata import METADATA_KEY, read_onnx_metadata, to_props, write_onnx_metadata
from unetpp.model.resolve import model_source

BACKENDS = {"onnxruntime": ".onnx", "openvino": ".xml"}
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def report_path(out: Path) -> Path:
    """The JSON written beside the artefact: model.xml -> model.compile.json."""
    return out.with_suffix(".compile.json")


def _versions() -> dict[str, str]:
    found = {}
    for pkg in ("onnx", "onnxruntime", "openvino", "nncf", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[pkg] = metadata.version(pkg)
    return found


def _check_args(model: Path, backend: str, out: Path, batch: int | None, int8: bool, calib: Path | None,
                val: Path | None, masks: Path | None) -> None:
    if backend not in BACKENDS:
        raise InputError(expected_found("--backend", " | ".join(BACKENDS), repr(backend)))
    if out.suffix.lower() != BACKENDS[backend]:
        raise InputError(expected_found(f"-o for --backend {backend}", f"a path ending in {BACKENDS[backend]}",
                                        repr(str(out))))
    if not model.is_file():
        raise InputError(expected_found("MODEL", "an .onnx file, an IR .xml or a checkpoint .pt/.pth",
                                        f"nothing at {model}"))
    allowed = (".onnx", *CHECKPOINT_SUFFIXES) + ((".xml",) if backend == "openvino" else ())
    if model.suffix.lower() not in allowed:
        raise InputError(expected_found(f"MODEL for --backend {backend}", " or ".join(allowed),
                                        f"suffix {model.suffix!r}"))
    if model.resolve() == out.resolve():
        raise InputError(expected_found("-o", "a path other than MODEL", str(out)))
    if batch is not None and batch < 1:
        raise InputError(expected_found("--batch", "a positive integer", batch))
    if int8 and calib is None:
        raise InputError(expected_found("--int8", "--calib DIR of training inputs (.bin/.npy)", "no --calib"))
    if (val is None) != (masks is None):
        raise InputError(expected_found("--val and --masks", "both or neither", f"--val {val}, --masks {masks}"))


def _source_model(model: Path, work: Path, opset: int, depth: int | None = None) -> Path:
    """An ONNX (or IR) file to start from; a checkpoint is exported first (dynamic batch; pruned to `depth`)."""
    if model.suffix.lower() not in CHECKPOINT_SUFFIXES:
        if depth is not None:
            raise InputError(expected_found("--depth", "a checkpoint (.pt/.pth) to prune", f"{model.name}, whose "
                                            "graph is fixed"))
        return model
    from unetpp.model.export import export_onnx

    dst = work / "source.onnx"
    export_onnx(model, dst, opset=opset, depth=depth)
    return dst


def compile_model(model: str | Path, backend: str, out: str | Path, batch: int | None = None, int8: bool = False,
                  calib: str | Path | None = None, calib_count: int = 100, val: str | Path | None = None,
                  masks: str | Path | None = None, max_iou_drop: float = 0.005, force: bool = False,
                  ort_level: str = "extended", depth: int | None = None,
                  samples: list[Any] | None = None) -> dict[str, Any]:
    """Build the artefact for `backend` from an ONNX file (or IR, or checkpoint) and return its report.

    onnxruntime -> an optimised .onnx (int8: a QDQ .onnx); openvino -> IR .xml/.bin (int8: NNCF).
    With val/masks the guide IoU of source vs artefact is measured and a drop above max_iou_drop is refused
    (nothing written) unless force. Outputs appear only complete (built in a temporary folder, then renamed).
    `depth` prunes a checkpoint to X0,depth before building; `samples` (float32 inputs in memory) calibrate int8
    in place of `calib`.
    """
    model, out = model_source(model), Path(out)  # a shipped model's name (guide, instance) or a path
    calib_p, val_p, masks_p = (Path(p) if p is not None else None for p in (calib, val, masks))
    _check_args(model, backend, out, batch, int8 and samples is None, calib_p, val_p, masks_p)
    ensure_dir(out.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.compile-", dir=out.parent))
    try:
        calib_files: list[str] = []
        if int8 and samples is not None:
            calib_files = [f"{len(samples)} inputs given in memory"]
        elif int8:
            samples, calib_files = calibration_samples(calib_p, calib_count, val_p)
        samples = samples or []
        source = _source_model(model, work, onnx_passes.QDQ_MIN_OPSET if int8 else 11, depth)
        staged = work / out.name
        if backend == "onnxruntime":
            details = _build_ort(source, staged, work, batch, int8, samples, ort_level)
        else:
            details = _build_ov(source, staged, batch, int8, samples)
        if backend == "onnxruntime":
            carry_metadata(source, staged)
        report: dict[str, Any] = {
            "artefact": str(out), "backend": backend, "int8": int8, "batch": batch,
            "dynamic_batch": batch is None, "source": str(model), "source_sha256": file_sha256(model),
            "depth": depth, **details,
            "calibration": {"folder": str(calib_p) if calib_p else None, "files": calib_files} if int8 else None,
            "versions": _versions(), "date": datetime.now().isoformat(timespec="seconds"),
        }
        if val_p is not None:
            guard = compare(backend, source, staged, val_p, masks_p)
            guard.update(max_iou_drop=max_iou_drop, forced=bool(force), passed=guard["iou_drop"] <= max_iou_drop)
            report["accuracy"] = guard
            if not guard["passed"] and not force:
                raise AccuracyDropError(expected_found(
                    f"guide IoU of the compiled model on {guard['n_images']} val images",
                    f"a drop of at most {max_iou_drop:g} from {guard['iou_guide_reference']:.4f}",
                    f"{guard['iou_guide_compiled']:.4f} (drop {guard['iou_drop']:.4f}); nothing was written",
                    "calibrate on more training inputs, raise --max-iou-drop, or pass --force"))
        _publish(staged, out, backend)
        report["artefact_sha256"] = file_sha256(out)
        write_json_atomic(report_path(out), report)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_ort(source: Path, staged: Path, work: Path, batch: int | None, int8: bool, samples: list,
               level: str) -> dict[str, Any]:
    if int8:
        qdq = work / "qdq.onnx"
        details = onnx_passes.ort_quantize_qdq(source, qdq, samples, work)
        m = onnx_passes.set_batch(onnx_passes.load_onnx(qdq), batch)
        onnx_passes.save_onnx(m, staged)
        return {"quantization": details}
    m = onnx_passes.set_batch(onnx_passes.load_onnx(source), batch)
    batched = work / "batched.onnx"
    onnx_passes.save_onnx(m, batched)
    onnx_passes.ort_optimize(batched, staged, level)
    return {"ort_graph_optimization": level, "opset": onnx_passes.opset_of(m)}


def _build_ov(source: Path, staged: Path, batch: int | None, int8: bool, samples: list) -> dict[str, Any]:
    m = ov_passes.set_batch(ov_passes.read_model(source), None)
    details: dict[str, Any] = {"ir_weights": "fp32"}
    if int8:
        m, details["quantization"] = ov_passes.nncf_quantize(m, samples)
        details["quantization"].update(ov_passes.cover_input_range(m, samples))
    ov_passes.set_batch(m, batch)
    meta = read_onnx_metadata(source)
    if meta is not None:  # the source's self-description travels in the IR's rt_info
        m.set_rt_info(to_props(meta)[METADATA_KEY], [METADATA_KEY])
    ov_passes.save_ir(m, staged)
    return details


def carry_metadata(source: Path, staged: Path) -> None:
    """The source ONNX's self-description (preprocessing, outputs) goes into the optimised/int8 ONNX too."""
    meta = read_onnx_metadata(source)
    if meta is not None:
        proto = onnx_passes.load_onnx(staged)
        write_onnx_metadata(proto, meta)
        onnx_passes.save_onnx(proto, staged)


def _publish(staged: Path, out: Path, backend: str) -> None:
    """Rename the staged files into place (an IR's .bin before its .xml, so a visible .xml is complete)."""
    pairs = [(staged.with_suffix(".bin"), out.with_suffix(".bin"))] if backend == "openvino" else []
    pairs.append((staged, out))
    for src, dst in pairs:
        if not src.is_file():
            raise OutputError(expected_found("compiled artefact", f"a file at {src}", "none"))
        try:
            os.replace(src, dst)
        except OSError as exc:
            raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from None
