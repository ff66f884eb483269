"""Run observers (MLPerf logging, hardware monitors), one module each; see mlscale.bench.observers."""
