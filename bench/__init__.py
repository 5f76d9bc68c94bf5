"""Benchmarks of the companion against baselines measured in the same run: `make bench`."""
