"""Benchmarks: table specs, the runner (local process pool or Ray), the SQLite store, reports."""
