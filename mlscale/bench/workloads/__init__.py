"""mlscale.bench.workloads."""
