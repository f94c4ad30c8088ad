"""Benchmarks: sweeps over runtimes x batch sizes, and reports built from the per-cell JSONs only."""

from unetpp.bench.report import load_cells, write_report
from unetpp.bench.spec import BackendSpec, parse_spec, parse_specs
from unetpp.bench.sweep import DEFAULT_BATCH_SIZES, run_sweep

__all__ = ["DEFAULT_BATCH_SIZES", "BackendSpec", "load_cells", "parse_spec", "parse_specs", "run_sweep",
           "write_report"]
