"""One model, many threads: `Model.predict` and `Runtime.infer` from several threads at once give each thread the
answer it gets alone (OpenVINO: one infer request per call; ONNX Runtime: its session's `run` is thread-safe)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from unetpp.api import Model
from unetpp.model.export import synthetic_nuclei
from unetpp.runtimes import get_runtime

N_THREADS = 3
ROUNDS = 2


def _images() -> list[np.ndarray]:
    """Small grey images with bright blobs, one per thread, each different (so a mix-up shows)."""
    rng = np.random.default_rng(5)
    out = []
    for k in range(N_THREADS):
        img = np.full((64 + 16 * k, 80), 15, np.uint8)
        for _ in range(3 + k):
            y, x = int(rng.integers(8, img.shape[0] - 8)), int(rng.integers(8, 72))
            img[y - 5:y + 5, x - 5:x + 5] = 210
        out.append(img)
    return out


def _in_threads(fn, args: list) -> list:
    """fn(arg) for each arg, each in its own thread, ROUNDS times, started together: [[result per round]]."""
    results: list[list] = [[] for _ in args]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(args))

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(ROUNDS):
                results[i].append(fn(args[i]))
        except BaseException as exc:  # noqa: BLE001 - reported below, with its thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{len(errors)} thread(s) failed: {errors[0]!r}"
    return results


def _labels_and_prob(model: Model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, info = model.predict(image)
    return labels, info["prob"]  # random weights find few nuclei: the probabilities show a mix-up for sure


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_model_predict_from_threads_gives_each_its_own_answer(backend: str, onnx_model: Path) -> None:
    pytest.importorskip(backend)
    images = _images()
    with Model(get_runtime(backend, onnx_model, threads=1)) as model:
        alone = [_labels_and_prob(model, img) for img in images]
        got = _in_threads(lambda img: _labels_and_prob(model, img), images)
    for i, rounds in enumerate(got):
        assert len(rounds) == ROUNDS
        for labels, prob in rounds:
            np.testing.assert_array_equal(labels, alone[i][0])
            np.testing.assert_allclose(prob, alone[i][1], atol=1e-5, rtol=0)


def test_runtime_infer_from_threads_at_new_batch_sizes(onnx_model: Path) -> None:
    """Each thread its own batch size, none compiled before (OpenVINO compiles one model per batch size):
    compiling and running must not trip over each other."""
    pytest.importorskip("openvino")
    backend = "openvino"
    x = synthetic_nuclei(N_THREADS, seed=4)
    batches = [x[:k + 1] for k in range(N_THREADS)]
    with get_runtime(backend, onnx_model, threads=1) as rt:
        got = _in_threads(rt.infer, batches)
        alone = [rt.infer(b) for b in batches]
    for i, rounds in enumerate(got):
        for out in rounds:
            np.testing.assert_allclose(out, alone[i], atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_runtime_infer_from_threads_at_one_batch_size(backend: str, onnx_model: Path) -> None:
    """All threads at the batch size compiled already, each its own input: no thread gets another's output."""
    pytest.importorskip(backend)
    x = synthetic_nuclei(N_THREADS, seed=4)
    singles = [x[i:i + 1] for i in range(N_THREADS)]
    with get_runtime(backend, onnx_model, threads=1) as rt:
        alone = [rt.infer(b) for b in singles]
        got = _in_threads(rt.infer, singles)
    for i, rounds in enumerate(got):
        for out in rounds:
            np.testing.assert_allclose(out, alone[i], atol=1e-5, rtol=0)


@pytest.mark.published
@pytest.mark.slow
def test_default_runtime_from_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """What users get from `unetpp.load()` (OpenVINO int8 where it passes its check, built once into the suite's
    own cache): several threads, each its own answer (the fault was first reported on this runtime)."""
    pytest.importorskip("openvino")
    import unetpp

    monkeypatch.delenv("UNETPP_DEFAULT_RUNTIME", raising=False)
    images = _images()
    with unetpp.load() as model:
        alone = [_labels_and_prob(model, img) for img in images]
        got = _in_threads(lambda img: _labels_and_prob(model, img), images)
    for i, rounds in enumerate(got):
        for labels, prob in rounds:
            np.testing.assert_array_equal(labels, alone[i][0])
            np.testing.assert_allclose(prob, alone[i][1], atol=1e-5, rtol=0)
