"""Benchmarks: ``python -m benchmarks`` measures speed and memory and writes benchmarks/results/."""
