"""Benchmark scripts whose figures are recorded in docs/benchmarks.md (see benchmarks/README.md)."""
