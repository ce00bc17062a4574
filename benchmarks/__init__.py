"""Benchmarks: `python -m benchmarks.run` (inference, every runtime and the peers) and the training/data scripts."""
