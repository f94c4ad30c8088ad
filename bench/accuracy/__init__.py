"""Accuracy benchmarks: scripts run from the checkout (python bench/accuracy/X.py or python -m bench.accuracy.X)."""
