"""The batcher in-process with a trivial real runtime: requests share runtime calls, a runtime failure fails only the
images it held (the driver is restarted), a request cancelled while queued is skipped."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.model.metadata import build_metadata
from unetpp.predict.image import PredictOptions
from unetpp.runtimes.base import Runtime
from unetpp.serve.batcher import Batcher, ItemFailed
from unetpp.serve.metrics import Metrics


class GatedRuntime(Runtime):
    """A real runtime of a trivial model (every logit 5.0) that can be held at a gate and made to fail the calls
    `fail_on` names, as a lost device would."""

    name = "gated"

    def __init__(self) -> None:
        super().__init__("gated-model")
        self.calls: list[int] = []
        self.fail_on: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()

    def _activate(self) -> None:
        self.output_channels = 1
        self.metadata = build_metadata(ModelConfig(), PreprocessConfig(size=96))

    def _infer(self, x: np.ndarray) -> np.ndarray:
        self.gate.wait(10)
        self.calls.append(int(x.shape[0]))
        if len(self.calls) in self.fail_on:
            raise RuntimeError("device lost")
        return np.full((x.shape[0], 1, 96, 96), 5.0, np.float32)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


def _img() -> np.ndarray:
    return np.full((96, 96, 3), 128, np.uint8)


@pytest.fixture
def batcher():
    rt = GatedRuntime()
    b = Batcher(rt, Metrics(), batch_size=8, max_wait_ms=50)
    b.start()  # the warm-up call is call 1
    yield b
    b.stop()


def test_requests_arriving_together_share_a_call(batcher: Batcher) -> None:
    async def go() -> list:
        return await asyncio.gather(*(batcher.submit(_img(), PredictOptions(mode="tile")) for _ in range(4)))

    done = asyncio.run(go())
    assert [rec["nuclei"] for rec, _ in done] == [1, 1, 1, 1]
    assert batcher.runtime.calls[1:] == [4]
    assert set(done[0][1]) == {"queue_ms", "compute_ms"} and batcher.depth() == 0


def test_a_runtime_failure_fails_the_held_images_and_serving_goes_on(batcher: Batcher) -> None:
    batcher.runtime.fail_on = {2}

    async def go() -> tuple:
        first = await asyncio.gather(batcher.submit(_img(), PredictOptions(mode="tile")), return_exceptions=True)
        second = await batcher.submit(_img(), PredictOptions(mode="tile"))
        return first[0], second

    failed, (rec, _) = asyncio.run(asyncio.wait_for(go(), 30))
    assert isinstance(failed, ItemFailed) and failed.internal
    assert rec["nuclei"] == 1 and batcher.metrics.errors["driver"] == 1


def test_a_request_cancelled_while_queued_is_skipped(batcher: Batcher) -> None:
    rt = batcher.runtime

    async def go() -> dict:
        rt.gate.clear()  # hold the driver in its next call
        blocker = batcher.submit(_img(), PredictOptions(mode="tile"))
        await asyncio.sleep(0.3)
        dropped = batcher.submit(_img(), PredictOptions(mode="tile"))
        dropped.cancel()  # a 504: its client is gone
        await asyncio.sleep(0.1)
        rt.gate.set()
        await blocker
        rec, _ = await batcher.submit(_img(), PredictOptions(mode="tile"))
        return rec

    assert asyncio.run(asyncio.wait_for(go(), 30))["nuclei"] == 1
    assert sum(rt.calls[1:]) == 2 and batcher.depth() == 0


def test_the_stream_moves_to_a_fresh_driver_every_few_images(batcher: Batcher,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import unetpp.serve.batcher as mod

    monkeypatch.setattr(mod, "RECYCLE_EVERY", 3)

    async def go() -> list:
        out = []
        for _ in range(4):
            out += await asyncio.gather(*(batcher.submit(_img(), PredictOptions(mode="tile")) for _ in range(2)))
        return out

    done = asyncio.run(asyncio.wait_for(go(), 30))
    assert [rec["nuclei"] for rec, _ in done] == [1] * 8 and batcher.depth() == 0
