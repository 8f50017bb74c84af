"""Benchmarks of nonsite's hot paths against the libraries people would otherwise run."""
