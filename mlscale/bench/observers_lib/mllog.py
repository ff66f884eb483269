"""MLPerf HPC logging: rank 0 writes `mllog.txt` with the official `mlperf_logging.mllog`.

The log follows the MLPerf HPC rules (v3.0): submission_* keys, cache_clear,
init_start/init_stop around set-up, run_start/run_stop (with status), one
epoch_start/epoch_stop per epoch and eval_start/eval_accuracy/eval_stop for
its test pass, number_of_nodes, accelerators_per_node, global_batch_size,
train_samples and eval_samples, all values as JSON numbers. Events are stamped
with the time they happened: the hooks run between epochs, so the eval window of
an epoch is placed from its measured test time.

It passes `python -m mlperf_logging.compliance_checker --usage hpc --ruleset 3.0.0
--config mlscale/results/mlperf_rules/hpc_3.0.0/mlscale_common.yaml mllog.txt`,
the ruleset shipped for mlscale's workload names (the stock one accepts only the
MLPerf HPC benchmarks).

The submission fields come from the environment: MLSCALE_MLPERF_ORG (default
"mlscale"), MLSCALE_MLPERF_DIVISION ("open"), MLSCALE_MLPERF_STATUS ("research");
the platform is the run's --system.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import time
from typing import Any

from mlperf_logging.mllog import constants as C
from mlperf_logging.mllog.mllog import MLLogger

from mlscale.bench.observers import RunObserver

FILENAME = "mllog.txt"
# HPC keys the library's constants module does not define.
NUMBER_OF_NODES = "number_of_nodes"
ACCELERATORS_PER_NODE = "accelerators_per_node"
_loggers = itertools.count()


def _ms(t: float | None = None) -> int:
    return int((time.time() if t is None else t) * 1000)


class MLPerfLog(RunObserver):
    name = "mllog"

    def __init__(self, ctx):
        super().__init__(ctx)
        # Observers are made during set-up, so this is where initialisation starts.
        self.init_start_ms = _ms()
        self.enabled = ctx.rank == 0
        self.buffer = io.StringIO()
        self.samples_logged = False
        self.epoch_start_ms: dict[int, int] = {}
        if not self.enabled:
            return
        logger = logging.getLogger(f"mlscale.mllog.{next(_loggers)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(logging.StreamHandler(self.buffer))
        self.mllogger = MLLogger(logger=logger, default_stack_offset=2)

    def _event(self, key: str, value: Any = None, metadata: dict | None = None, time_ms: int | None = None) -> None:
        self.mllogger.event(key=key, value=value, metadata=metadata, time_ms=time_ms or _ms())

    def run_start(self, meta: dict[str, Any]) -> None:
        if not self.enabled:
            return
        env, run = self.ctx.env, self.ctx.run
        on_gpu = getattr(self.ctx.device, "type", str(self.ctx.device)) == "cuda"
        workload = meta.get("workload") or ""
        self._event(C.SUBMISSION_BENCHMARK, workload, time_ms=self.init_start_ms)
        self._event(C.SUBMISSION_ORG, os.environ.get("MLSCALE_MLPERF_ORG", "mlscale"), time_ms=self.init_start_ms)
        self._event(
            C.SUBMISSION_DIVISION, os.environ.get("MLSCALE_MLPERF_DIVISION", "open"), time_ms=self.init_start_ms
        )
        self._event(
            C.SUBMISSION_STATUS, os.environ.get("MLSCALE_MLPERF_STATUS", "research"), time_ms=self.init_start_ms
        )
        self._event(C.SUBMISSION_PLATFORM, getattr(run, "system", "") or "local", time_ms=self.init_start_ms)
        self._event(C.CACHE_CLEAR, True, time_ms=self.init_start_ms)
        self.mllogger.start(key=C.INIT_START, time_ms=self.init_start_ms)
        self._event(NUMBER_OF_NODES, int(env.num_nodes or 1))
        self._event(ACCELERATORS_PER_NODE, int(env.local_size or 1) if on_gpu else 0)
        self._event(C.SEED, int(getattr(run, "seed", 0)))
        self._event(C.GLOBAL_BATCH_SIZE, int(self.ctx.batch.global_size))
        self._event(C.GRADIENT_ACCUMULATION_STEPS, 1)
        if meta.get("lr") is not None:
            self._event(C.OPT_BASE_LR, float(meta["lr"]))
        self._log_samples(meta.get("train_samples"), meta.get("eval_samples", meta.get("test_samples")))
        self.mllogger.end(key=C.INIT_STOP, time_ms=_ms())
        self.mllogger.start(key=C.RUN_START, time_ms=_ms())

    def _log_samples(self, train: Any, evaluation: Any) -> None:
        if self.samples_logged or train is None or evaluation is None:
            return
        self._event(C.TRAIN_SAMPLES, int(train))
        self._event(C.EVAL_SAMPLES, int(evaluation))
        self.samples_logged = True

    def epoch_start(self, epoch: int) -> None:
        if self.enabled:
            self.epoch_start_ms[epoch] = _ms()
            self.mllogger.start(key=C.EPOCH_START, metadata={"epoch_num": epoch}, time_ms=self.epoch_start_ms[epoch])

    def epoch_end(self, epoch: int, stats: dict[str, Any]) -> None:
        if not self.enabled:
            return
        end = _ms()
        test_ms = int(1000 * (stats.get("test_time") or 0.0))
        eval_start = max(end - test_ms, self.epoch_start_ms.get(epoch, end - test_ms))
        self.mllogger.end(key=C.EPOCH_STOP, metadata={"epoch_num": epoch}, time_ms=eval_start)
        if stats.get("test_samples"):
            self.mllogger.start(key=C.EVAL_START, metadata={"epoch_num": epoch}, time_ms=eval_start)
            accuracy = _accuracy(stats)
            if accuracy is not None:
                self._event(C.EVAL_ACCURACY, accuracy, metadata={"epoch_num": epoch}, time_ms=end)
            self.mllogger.end(key=C.EVAL_STOP, metadata={"epoch_num": epoch}, time_ms=end)
        # The sample counts are per epoch: known for sure once the first epoch has run.
        self._log_samples(stats.get("train_samples"), stats.get("test_samples"))

    def run_end(self, status: str) -> None:
        if self.enabled:
            self._log_samples(0, 0)  # a run that never finished an epoch still states its sample counts
            self.mllogger.end(
                key=C.RUN_STOP, metadata={"status": C.SUCCESS if status == "ok" else C.ABORTED}, time_ms=_ms()
            )

    def files(self, record: dict[str, Any]) -> dict[str, str | bytes]:
        return {FILENAME: self.buffer.getvalue()} if self.enabled else {}


def _accuracy(stats: dict[str, Any]) -> float | None:
    """The epoch's test value of the workload's accuracy metric (else the first number among its metrics)."""
    metrics = stats.get("test_metrics") or {}
    for value in (stats.get("test_accuracy"), *metrics.values()):
        if isinstance(value, (int, float)):
            return float(value)
    return None
