"""The methane_plume workload (see workload.py)."""
