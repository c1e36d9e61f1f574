"""Benchmarks, run from the repository root as modules (``python -m bench.bench_api``): they
import the test helpers in ``tests.support``."""
