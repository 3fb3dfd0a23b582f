"""Benchmarks: `python -m bench` (or `make bench`) measures and writes docs/benchmarks.md."""
