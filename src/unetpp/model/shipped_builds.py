"""The verified int8 builds that ship with unetpp (weights/builds/), made by `make builds` from the committed
checkpoints (compile/make_builds.py).

`manifest.json` lists each build: what it is (`kind`: "int8", a model's int8 file and its accuracy check record;
"first-pass", the guide model's int8 file for the scale rule's first pass), the backend, the SHA-256 of the
checkpoint it was built from, and the SHA-256 of each of its files (the record included). A shipped build is used
only when the installed checkpoint has that SHA-256 and every file still has its own; otherwise the caller builds
in the model cache as for any other checkpoint. `UNETPP_SHIPPED_BUILDS=0` ignores them (to measure or test a
first-use build).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unetpp.model.cache_entries import damage
from unetpp.model.sources import WEIGHTS

BUILDS = WEIGHTS / "builds"
MANIFEST = BUILDS / "manifest.json"
ENV_SHIPPED = "UNETPP_SHIPPED_BUILDS"
MANIFEST_VERSION = 1


def shipped_builds_enabled() -> bool:
    return os.environ.get(ENV_SHIPPED, "").strip().lower() not in ("0", "no", "false", "off")


def read_manifest(folder: Path | None = None) -> dict[str, Any] | None:
    """The manifest of `folder` (default BUILDS), or None where there is none (or it is not one)."""
    try:
        doc = json.loads((Path(folder or BUILDS) / MANIFEST.name).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION or not isinstance(doc.get("builds"), list):
        return None
    return doc


def find_shipped(kind: str, checkpoint_sha256: str, backend: str, accept: Callable[[dict[str, Any]], bool],
                 folder: Path | None = None) -> tuple[tuple[Path, dict[str, Any]] | None, str | None]:
    """((artefact, record), None) for the shipped build of this kind, checkpoint and backend that `accept`s and
    whose files are intact; (None, why) for a matching build whose files do not check; (None, None) for none."""
    if not shipped_builds_enabled():
        return None, None
    folder = Path(folder or BUILDS)
    manifest = read_manifest(folder)
    for entry in (manifest or {}).get("builds", []):
        if not (isinstance(entry, dict) and entry.get("kind") == kind and entry.get("backend") == backend
                and entry.get("checkpoint_sha256") == checkpoint_sha256 and accept(entry)):
            continue
        why = damage(folder, entry.get("files"))
        if why:
            return None, f"the shipped {kind} {backend} build of {entry.get('checkpoint')} is damaged ({why})"
        record = json.loads((Path(folder) / entry["record"]).read_text())
        return (Path(folder) / entry["artefact"], record), None
    return None, None
