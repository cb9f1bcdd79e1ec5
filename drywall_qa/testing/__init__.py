"""Tiny models built in code, small COCO splits and a loopback app server: what the tests and the benchmarks
run on, offline and in seconds."""
