# Reports (issue 5): the scaling report of a results directory, and the MLPerf log check.
RUNS ?= runs
.PHONY: results-report results-mllog-check

# HTML + Markdown scaling report with plots of every run under $(RUNS).
results-report: install
	$(PY) -m mlscale report $(RUNS) --html $(RUNS)/report-html

# Official MLPerf HPC compliance checker on every mllog.txt under $(RUNS), with mlscale's ruleset.
results-mllog-check: install
	find $(RUNS) -name mllog.txt -print0 | xargs -0 -r -n1 $(PY) -m mlperf_logging.compliance_checker \
		--usage hpc --ruleset 3.0.0 --config mlscale/results/mlperf_rules/hpc_3.0.0/mlscale_common.yaml \
		--log_output /dev/null
