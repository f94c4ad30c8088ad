"""PyTorch backend: the reference model itself, on CPU or CUDA, optionally fp16/bf16, channels_last, compiled,
or replayed from CUDA graphs captured once per batch shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from unetpp.errors import InputError, ModelFileError, RuntimeUnavailable, expected_found
from unetpp.model.metadata import SIZE_STEP, build_metadata, free_size_by_default, predict_facts
from unetpp.runtimes.base import Runtime

DTYPES = ("fp32", "fp16", "bf16")
DEVICES = ("cpu", "cuda")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


class TorchRuntime(Runtime):
    """Options: device, dtype, channels_last, compile, cuda_graphs, threads.

    On CUDA the compute-only time is measured with CUDA events around the forward pass (or graph replay) alone,
    as ais_bench separates NPU compute from H2D/D2H; the call's wall time, copies included, is last_call_ms.
    On the CPU both are the call's wall time.
    """

    name = "torch"
    suffixes = CHECKPOINT_SUFFIXES
    OPTIONS = ("device", "dtype", "channels_last", "compile", "cuda_graphs", "threads", "up_mode", "depth")
    flags = {"threads": "threads", "device": "device", "dtype": "dtype"}

    def _check_options(self) -> tuple[str, str]:
        device = str(self.options.get("device", "cpu")).lower()
        dtype = str(self.options.get("dtype", "fp32")).lower()
        if device not in DEVICES and not device.startswith("cuda:"):
            raise InputError(expected_found("torch device", " | ".join(DEVICES), repr(device)))
        if dtype not in DTYPES:
            raise InputError(expected_found("torch dtype", " | ".join(DTYPES), repr(dtype)))
        if self.model.suffix.lower() not in CHECKPOINT_SUFFIXES:
            from unetpp.runtimes.ort import describe_file

            hint = "use --backend onnxruntime" if self.model.suffix.lower() == ".onnx" else ""
            raise ModelFileError(expected_found("torch backend model", "a PyTorch checkpoint (.pt or .pth)",
                                                describe_file(self.model), hint))
        return device, dtype

    def _activate(self) -> None:
        import torch

        from unetpp.model.checkpoint import load_checkpoint
        from unetpp.model.depth import choose_depth
        from unetpp.model.network import PrunedNestedUNet

        device, dtype = self._check_options()
        cuda_graphs = bool(self.options.get("cuda_graphs", False))
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeUnavailable(expected_found(
                "torch device 'cuda'", "a CUDA device",
                f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) with no usable GPU",
                "run on a GPU machine with a CUDA build of torch, or use --device cpu"))
        if cuda_graphs and not device.startswith("cuda"):
            raise RuntimeUnavailable(expected_found("cuda_graphs", "device 'cuda'", repr(device)))
        if self.options.get("threads"):
            torch.set_num_threads(int(self.options["threads"]))
        ckpt = load_checkpoint(self.model, up_mode=self.options.get("up_mode"))
        ds = ckpt.config.deep_supervision
        depth = choose_depth(self.options.get("depth"), ds, ckpt.meta, ckpt.path)
        c, s = ckpt.config.input_channels, ckpt.preprocess.size
        self.input_shape = (c, s, s)
        # fully convolutional, so any multiple of 16 runs; free for the models whose ONNX export is free too
        self.size_step = SIZE_STEP if free_size_by_default(ckpt.meta) else None
        self.output_channels = ckpt.config.num_classes
        self.metadata = build_metadata(ckpt.config, ckpt.preprocess, ckpt.meta.get("outputs"),
                                       **predict_facts(ckpt.meta),
                                       **({"depth": depth} if ds else {}))
        self._torch = torch
        self._device = torch.device(device)
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        self._memory_format = torch.channels_last if self.options.get("channels_last") else torch.contiguous_format
        model = ckpt.model.to(self._device, dtype=self._dtype, memory_format=self._memory_format).eval()
        if ds:  # one output, X0,depth, computing only the nodes it needs
            model = PrunedNestedUNet(model, depth).eval()
        self._manual_graphs = cuda_graphs and not self.options.get("compile")
        if self.options.get("compile"):
            # With cuda_graphs, Inductor captures and replays its own CUDA graphs per shape ("reduce-overhead").
            model = torch.compile(model, mode="reduce-overhead" if cuda_graphs else None)
        self._model = model
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, Any]] = {}

    def _forward(self, x: Any) -> Any:
        out = self._model(x)
        return out[-1] if isinstance(out, list | tuple) else out

    def _to_device(self, batch: np.ndarray) -> Any:
        x = self._torch.from_numpy(batch).to(self._device)
        return x.to(dtype=self._dtype, memory_format=self._memory_format)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        on_cuda = self._device.type == "cuda"
        with torch.inference_mode():
            if self._manual_graphs:
                graph, static_out = self._prepare_graph(batch)
                events = self._record_start() if on_cuda else None
                graph.replay()
                out = static_out
            else:
                x = self._to_device(batch)
                events = self._record_start() if on_cuda else None
                out = self._forward(x)
            if events is not None:
                events[1].record()
            result = out.float().cpu().numpy()
        if events is not None:
            self._device_ms = float(events[0].elapsed_time(events[1]))
        return result

    def _record_start(self) -> tuple[Any, Any]:
        start, end = (self._torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        return start, end

    def _prepare_graph(self, batch: np.ndarray) -> tuple[Any, Any]:
        """Capture one CUDA graph per batch shape on first sight (after side-stream warm-up); load its input."""
        torch = self._torch
        key = tuple(batch.shape)
        if key not in self._graphs:
            static_in = self._to_device(batch).clone()
            stream = torch.cuda.Stream(device=self._device)
            stream.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream(self._device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(torch.from_numpy(batch))  # host to device, cast and layout in one copy
        return graph, static_out

    def _synchronize(self) -> None:
        device = getattr(self, "_device", None)
        if device is not None and device.type == "cuda":
            self._torch.cuda.synchronize(device)

    def _deactivate(self) -> None:
        self._graphs = {}
        self._model = None
        if getattr(self, "_device", None) is not None and self._device.type == "cuda":
            self._torch.cuda.empty_cache()

    def version(self) -> str:
        try:
            import torch

            return f"{torch.__version__} (CUDA {torch.version.cuda or 'none'})"
        except ImportError:
            return "not installed"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        device = getattr(self, "_device", None)
        if device is not None and device.type == "cuda":
            d["gpu"] = self._torch.cuda.get_device_name(device)
        return d
