"""A real `unetpp serve` process per session (shared by the API and page tests) and synthetic nuclei images."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the serve tests talk HTTP through httpx (the dev extra)")
pytest.importorskip("fastapi", reason="unetpp serve needs the serve extra: pip install 'unetpp[serve]'")

from serve_helpers import TOKEN, Server, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight synthetic nuclei PNGs (RGBA, 256x256 or 256x320), copied to plain names."""
    from unetpp.data.synthetic import make_synthetic_dsb

    root = make_synthetic_dsb(tmp_path_factory.mktemp("synth") / "ds", n=8, seed=7)
    out = tmp_path_factory.mktemp("images")
    paths = []
    for i, d in enumerate(sorted((root / "stage1_train").iterdir())):
        dst = out / f"nuclei_{i}.png"
        shutil.copy(d / "images" / f"{d.name}.png", dst)
        paths.append(dst)
    return paths


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server the API and page tests share: token on, --save, small limits (1 MiB, 2 Mpx)."""
    save = tmp_path_factory.mktemp("saved")
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    # the default runtime, as a user gets it (the shipped int8 build where OpenVINO is installed), not the suite's
    # fp32 override
    srv = start_server(["--token", TOKEN, "--save", str(save), "--max-upload-mb", "1", "--max-pixels", "2000000",
                        "--threads", "2"], log, token=TOKEN, save_dir=save, env={"UNETPP_DEFAULT_RUNTIME": None})
    yield srv
    stop_server(srv)
