"""Benchmark drivers: they measure the pipeline on a real corpus and write results; nothing here is used in production."""
