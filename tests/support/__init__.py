"""Helpers shared by the tests (import as `from support.run import run_mlscale`)."""
