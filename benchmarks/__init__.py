"""Benchmarks: one command each, printing figures and the ratio to a baseline measured in the same run."""
