"""Benchmarks: runs that measure and print figures (never test assertions); `kfstack bench` runs them."""
