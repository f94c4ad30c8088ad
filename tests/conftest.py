"""Shared fixtures. The real dataset comes from $UNETPP_DATA or ./data/dsb2018 (a link .ci/run makes)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The suite tests each path on ONNX Runtime fp32 (as written) unless a test asks for the default runtime (the fastest
# verified one: tests/compile/test_fast.py and the `published` default-path test clear this); subprocesses inherit it.
os.environ.setdefault("UNETPP_DEFAULT_RUNTIME", "fp32")
# The suite's own model cache, empty at the start of each session: nothing is read from or written to the user's
# (~/.cache/unetpp), so a warm cache cannot hide an export bug. Subprocesses inherit it; removed at the end.
TEST_CACHE = Path(tempfile.mkdtemp(prefix="unetpp-test-cache-"))
os.environ["UNETPP_CACHE"] = str(TEST_CACHE)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(TEST_CACHE, ignore_errors=True)


def _dsb_root() -> Path | None:
    for cand in (os.environ.get("UNETPP_DATA"), REPO / "data" / "dsb2018", REPO.parent / "shared" / "data" / "dsb2018"):
        if cand and (Path(cand) / "stage1_train").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def dsb_root() -> Path:
    """The real DSB2018 root; CI always has it (fails there rather than skipping)."""
    root = _dsb_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide the DSB2018 dataset (UNETPP_DATA or ./data/dsb2018)")
        pytest.skip("DSB2018 dataset not found (set UNETPP_DATA)")
    return root


@pytest.fixture(scope="session")
def val_ids(dsb_root: Path) -> list[str]:
    return [s for s in (dsb_root / "val_ids.txt").read_text().split() if s]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated nuclei set in the stage1_train layout (8 samples, 3 val): for tests that need realistic images
    but not DSB2018 itself, so that they run (and are never skipped) on any machine."""
    from unetpp.data.synthetic import make_synthetic_dsb

    return make_synthetic_dsb(tmp_path_factory.mktemp("synthetic") / "ds", n=8, seed=11, n_val=3)


# -- model artefacts with random weights (the shipped checkpoint is trained separately) -------------------------
@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A unetpp .pt of NestedUNet (nearest) with seeded random weights and non-trivial BatchNorm statistics."""
    import torch

    from unetpp.model.checkpoint import save_checkpoint
    from unetpp.model.network import build_model

    torch.manual_seed(0)
    model = build_model()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", model)


@pytest.fixture(scope="session")
def onnx_model(random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """random_checkpoint exported with the guide's settings (opset 11, dynamic batch)."""
    from unetpp.model.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "nested_unet.onnx"
    export_onnx(random_checkpoint, out)
    return out


@pytest.fixture(scope="session")
def instance_size() -> int:
    """The shipped instance model's own input size (its training crop): the fixed-window protocol runs at it."""
    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.model.resolve import shipped_checkpoint

    return load_checkpoint(shipped_checkpoint("instance")).preprocess.size
