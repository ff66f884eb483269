"""Engines: one package per framework (`mlscale/engines/<name>/engine.py`), each an
`mlscale.bench.engine.Engine` that runs a workload's steps. Imported on demand, so a
run of a torch workload never imports another framework."""
