"""Benchmarks: sized instances (instances.py) and the planner benchmark script."""
