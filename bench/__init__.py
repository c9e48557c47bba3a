"""Benchmarks: each prints figures and its reference measured in the same run (`python -m bench.<name>`).

bench/common.py holds what they share: the embedded services, bulk data, the server as a subprocess, pgbench and the
printing of figures.
"""
