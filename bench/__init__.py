"""Benchmarks: realistic data volumes and timings, kept out of the test suite on purpose."""
