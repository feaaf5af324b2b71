"""Benchmarks run by ``make bench`` (PostgreSQL only). ``bench.rescore``: rescoring throughput beside a
raw SQL UPDATE of the same rows; see its docstring."""
