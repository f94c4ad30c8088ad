"""`make builds` (`python -m unetpp.compile.make_builds`): the shipped models' verified int8 builds, made from the
committed checkpoints, into weights/builds/ with their check records and a manifest of SHA-256s.

Each build is made exactly as a first use makes it (compile/fast.py: calibrated on the check images, checked
against fp32 on them; the instance model's int8 first pass, compile/first_pass.py, with it), in an empty private
model cache, ignoring any build already shipped. The manifest (model/shipped_builds.py) records the SHA-256 of the
checkpoint each build was made from and of each file it wrote; at run time a build is used only while both still
match. Rerun it whenever a committed checkpoint changes (its SHA-256 changes with its metadata too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from unetpp.atomic import file_sha256, write_json_atomic
from unetpp.model.cache_entries import artefact_files, file_hashes, write_signed_json
from unetpp.model.shipped_builds import BUILDS, MANIFEST, MANIFEST_VERSION
from unetpp.model.sources import shipped_checkpoint

MODELS = ("instance",)  # the default model of predict, serve, unetpp.load() and napari
MAX_FILE_MB = 20


def _copy_artefact(src: Path, out: Path, stem: str) -> dict[str, str]:
    """Copy an artefact's files (an IR's .xml and .bin) into `out` as `stem` + their suffix; name -> SHA-256."""
    copied = []
    for f in artefact_files(src):
        dst = out / f"{stem}{f.suffix}"
        shutil.copyfile(f, dst)
        if dst.stat().st_size > MAX_FILE_MB * 1e6:
            raise SystemExit(f"make builds: {dst.name} is {dst.stat().st_size / 1e6:.1f} MB, over {MAX_FILE_MB} MB")
        copied.append(dst)
    return file_hashes(copied)


def _first_pass_entry(check: dict[str, Any], backend: str, out: Path) -> tuple[dict[str, Any], str]:
    """Ship the int8 first pass the check ran with; (its manifest entry, its artefact's shipped name)."""
    from unetpp.compile.first_pass import FIRST_PASS_MODEL
    from unetpp.compile.first_pass import RECORD_VERSION as FIRST_PASS_VERSION
    from unetpp.model.cache_entries import read_signed_json

    built = Path(check["first_pass"]["model"])
    record, why = read_signed_json(built.with_name(f"{backend}-int8.json"))
    if record is None:
        raise SystemExit(f"make builds: the first pass's record beside {built} does not read ({why})")
    stem = f"{FIRST_PASS_MODEL}-first-pass-{backend}-int8"
    files = _copy_artefact(built, out, stem)
    record = {**record, "source": shipped_checkpoint(FIRST_PASS_MODEL).name, "artefact": f"{stem}{built.suffix}",
              "files": dict(files)}
    write_signed_json(out / f"{stem}.json", record)
    files[f"{stem}.json"] = file_sha256(out / f"{stem}.json")
    entry = {"kind": "first-pass", "model": FIRST_PASS_MODEL, "checkpoint": record["source"],
             "checkpoint_sha256": record["source_sha256"], "backend": backend, "ids": record["ids"],
             "record_version": FIRST_PASS_VERSION, "artefact": f"{stem}{built.suffix}", "record": f"{stem}.json",
             "files": files}
    return entry, f"{stem}{built.suffix}"


def build_one(name: str, backend: str, out: Path, threads: int | None) -> list[dict[str, Any]]:
    """Build `name`'s int8 `backend` model as a first use would, copy it (and its first pass) into `out`; the
    manifest entries."""
    from unetpp.compile import fast

    source = shipped_checkpoint(name)
    t0 = time.perf_counter()
    artefact, check = fast.int8_build(source, backend, None, say=lambda m: print(f"make builds: {m}", flush=True),
                                      threads=threads, shipped=False)
    entries: list[dict[str, Any]] = []
    stem = f"{name}-{backend}-int8"
    files = _copy_artefact(artefact, out, stem)
    record = {k: v for k, v in check.items() if k != "shipped"}
    record.update(source=source.name, artefact=f"{stem}{artefact.suffix}", files=dict(files))
    if check.get("first_pass"):
        first_entry, first_name = _first_pass_entry(check, backend, out)
        entries.append(first_entry)
        record["first_pass"] = {**check["first_pass"], "model": first_name}
    write_signed_json(out / f"{stem}.check.json", record)
    files[f"{stem}.check.json"] = file_sha256(out / f"{stem}.check.json")
    entries.insert(0, {"kind": "int8", "model": name, "checkpoint": source.name,
                       "checkpoint_sha256": check["source_sha256"], "backend": backend, "depth_asked": None,
                       "depth": check.get("model_depth"), "set": check["set"],
                       "record_version": fast.RECORD_VERSION, "artefact": f"{stem}{artefact.suffix}",
                       "record": f"{stem}.check.json", "files": files, "passed": check["passed"],
                       "verdict": fast.verdict_text(check), "seconds": round(time.perf_counter() - t0, 1)})
    print(f"make builds: {name} {backend} int8: {'passed' if check['passed'] else 'did NOT pass'} "
          f"({fast.verdict_text(check)}), {time.perf_counter() - t0:.0f} s", flush=True)
    return entries


def make_builds(backends: tuple[str, ...], out: Path = BUILDS, threads: int | None = None) -> dict[str, Any]:
    """Every shipped model's int8 build for each backend into `out` (its old builds replaced), with the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="unetpp-builds-cache-") as cache:
        previous = os.environ.get("UNETPP_CACHE")
        os.environ["UNETPP_CACHE"] = cache  # an empty private cache: nothing reused
        try:
            for name in MODELS:
                for backend in backends:
                    entries += build_one(name, backend, out, threads)
        finally:
            if previous is None:
                os.environ.pop("UNETPP_CACHE", None)
            else:
                os.environ["UNETPP_CACHE"] = previous
    manifest = {"about": "The shipped models' verified int8 builds (made by `make builds` from the committed "
                         "checkpoints; used only while the installed checkpoint and every file match their SHA-256: "
                         "src/unetpp/model/shipped_builds.py)",
                "version": MANIFEST_VERSION, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "builds": entries}
    write_json_atomic(out / MANIFEST.name, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m unetpp.compile.make_builds", description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="openvino", help="comma-separated: openvino, onnxruntime (default openvino)")
    p.add_argument("--out", type=Path, default=BUILDS, help=f"folder (default {BUILDS})")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    make_builds(tuple(b.strip() for b in a.backends.split(",") if b.strip()), a.out, a.threads)
    print(f"make builds: wrote {a.out / MANIFEST.name} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
