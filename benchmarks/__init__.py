"""Benchmarks: `make bench` (benchmarks/run.py) runs them all and prints one table."""
