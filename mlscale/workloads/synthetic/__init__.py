"""The synthetic workload (see workload.py)."""
