"""Benchmark scripts (see bench/README.md); a package so that scripts run as `python -m bench.X.Y` share code."""
