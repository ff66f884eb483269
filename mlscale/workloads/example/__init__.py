"""The example workload: the smallest complete workload, to copy when adding one
(docs/contributing.md walks through it)."""
