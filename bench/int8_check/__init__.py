"""The int8 check studies behind bench/results/int8_check.md.

Run from the repository root: `python -m bench.int8_check.NAME`.
"""
