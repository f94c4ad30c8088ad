"""/metrics in the Prometheus text format (version 0.0.4), written here: requests by endpoint and status, errors
by kind, request latency and batch size histograms, the queue depth and the process's resident memory."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 64)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b:g}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.sum:.6f}", f"{name}_count{suffix} {self.total}"]
        return out


class Metrics:
    """Thread-safe counters behind /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batches = _Histogram(BATCH_BUCKETS)
        self.depth = 0

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency.setdefault(endpoint, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def batch(self, size: int) -> None:
        with self._lock:
            self.batches.observe(size)

    def queue_depth(self, depth: int) -> None:
        with self._lock:
            self.depth = depth

    def batch_counts(self) -> dict[int, int]:
        """Runtime calls per batch-size bucket upper bound (not cumulative), for the load report."""
        with self._lock:
            prev, out = 0, {}
            for b, c in zip(self.batches.buckets, self.batches.counts):
                out[b] = c - prev
                prev = c
            return out

    def render(self) -> str:
        with self._lock:
            out = ["# HELP unetpp_requests_total HTTP requests by endpoint and status code.",
                   "# TYPE unetpp_requests_total counter"]
            out += [f'unetpp_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                    for (e, s), n in sorted(self.requests.items())]
            out += ["# HELP unetpp_errors_total Refused or failed requests by kind.",
                    "# TYPE unetpp_errors_total counter"]
            out += [f'unetpp_errors_total{{kind="{k}"}} {n}' for k, n in sorted(self.errors.items())]
            out += ["# HELP unetpp_request_seconds Request latency in seconds.",
                    "# TYPE unetpp_request_seconds histogram"]
            for e, h in sorted(self.latency.items()):
                out += h.lines("unetpp_request_seconds", f'endpoint="{e}"')
            out += ["# HELP unetpp_batch_size Real tiles per runtime call (batched across requests).",
                    "# TYPE unetpp_batch_size histogram", *self.batches.lines("unetpp_batch_size"),
                    "# HELP unetpp_queue_depth Images submitted and not yet answered.",
                    "# TYPE unetpp_queue_depth gauge", f"unetpp_queue_depth {self.depth}",
                    "# HELP unetpp_resident_memory_bytes Resident memory of this process.",
                    "# TYPE unetpp_resident_memory_bytes gauge", f"unetpp_resident_memory_bytes {rss_bytes()}"]
        return "\n".join(out) + "\n"


def rss_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")
