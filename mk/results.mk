# Reports (issue 5): the scaling report of a results directory, and the MLPerf log check.
RUNS ?= runs
.PHONY: results-report results-mllog-check

# HTML + Markdown scaling report with plots of every run under $(RUNS).
results-report: install
	$(PY) -m mlscale report $(RUNS) --html $(RUNS)/report-html

# Official MLPerf HPC compliance checker on every mllog.txt under $(RUNS), with mlscale's ruleset.
results-mllog-check: install
	$(PY) -m mlscale.results.mlperf $(RUNS)
