"""Benchmarks: `make bench` runs them and prints results to record in BENCHMARKS.md."""
