"""Hardware monitors: a background thread on every rank samples CPU, memory, GPU and power.

Per sample: this process's CPU % (psutil; 100 = one core) and resident memory;
with NVML (nvidia-ml-py) and a CUDA device: the GPU's utilisation, memory in use
and power draw; the GPU's energy counter where the driver has one. CPU package
energy comes from Linux RAPL (/sys/class/powercap) when readable, on each node's
local rank 0 only (it measures the whole socket, shared by the node's ranks).

A sensor that cannot be read is recorded as absent (null in JSON, or the key
left out), never as zero: a zero would read as "idle" or "free energy".

Rank summaries go to ranks.jsonl under "observers" → "monitor"; rank 0 adds to record.json a
"monitor" summary over ranks and "energy_per_sample_j" (GPU + CPU energy of all
ranks between run start and run end, divided by all samples processed then:
training, test and inference) when any energy was readable.

The sampling interval is MLSCALE_MONITOR_INTERVAL seconds (default 0.5).
"""

from __future__ import annotations

import glob
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from mlscale.bench.observers import RunObserver

DEFAULT_INTERVAL_S = 0.5


class _Nvml:
    """One GPU through NVML; every reading returns None when the driver cannot give it."""

    def __init__(self, index: int):
        import pynvml

        self.nv = pynvml
        pynvml.nvmlInit()
        # CUDA numbers only the visible devices; NVML numbers all of them.
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        target = visible[index] if index < len(visible) else str(index)
        if target.isdigit():
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(int(target))
        else:  # a UUID (GPU-…/MIG-…)
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(target)

    def _read(self, fn, *args):
        try:
            return fn(self.handle, *args)
        except self.nv.NVMLError:
            return None

    def util_percent(self) -> float | None:
        rates = self._read(self.nv.nvmlDeviceGetUtilizationRates)
        return None if rates is None else float(rates.gpu)

    def mem_used_bytes(self) -> float | None:
        info = self._read(self.nv.nvmlDeviceGetMemoryInfo)
        return None if info is None else float(info.used)

    def power_w(self) -> float | None:
        mw = self._read(self.nv.nvmlDeviceGetPowerUsage)
        return None if mw is None else mw / 1000.0

    def energy_j(self) -> float | None:
        mj = self._read(self.nv.nvmlDeviceGetTotalEnergyConsumption)
        return None if mj is None else mj / 1000.0

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except self.nv.NVMLError:
            pass


def _rapl_files() -> list[Path]:
    """Package-level RAPL energy counters this process may read (none in most VMs and containers)."""
    files = []
    for path in glob.glob("/sys/class/powercap/intel-rapl:[0-9]*/energy_uj"):
        if path.count(":") == 1 and os.access(path, os.R_OK):  # packages, not their sub-domains
            files.append(Path(path))
    return files


def _rapl_read(files: list[Path]) -> float | None:
    try:
        return sum(int(f.read_text()) for f in files) / 1e6 if files else None
    except (OSError, ValueError):
        return None


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _max(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.max(vals)) if vals else None


class HardwareMonitor(RunObserver):
    name = "monitor"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.interval = float(os.environ.get("MLSCALE_MONITOR_INTERVAL", DEFAULT_INTERVAL_S))
        self.process = psutil.Process()
        self.samples: dict[str, list] = {k: [] for k in ("t", "cpu", "rss", "gpu_util", "gpu_mem", "power")}
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.gpu: _Nvml | None = None
        self.gpu_energy_start = self.gpu_energy_end = None
        self.rapl = _rapl_files() if getattr(ctx.env, "local_rank", 0) == 0 else []
        self.cpu_energy_start = self.cpu_energy_end = None
        self.t_start = self.t_end = None

    def _open_gpu(self) -> None:
        device = self.ctx.device
        if getattr(device, "type", None) != "cuda":
            return
        index = device.index if device.index is not None else getattr(self.ctx.env, "local_rank", 0)
        try:
            self.gpu = _Nvml(index)
        except Exception as err:  # no driver, no library, or no such device: GPU sensors absent
            self.ctx.log.info("monitor: NVML unavailable (%s); GPU sensors recorded as absent", err)
            self.gpu = None

    def sample(self) -> None:
        s = self.samples
        s["t"].append(time.monotonic())
        s["cpu"].append(self.process.cpu_percent(interval=None))
        s["rss"].append(float(self.process.memory_info().rss))
        gpu = self.gpu
        s["gpu_util"].append(gpu.util_percent() if gpu else None)
        s["gpu_mem"].append(gpu.mem_used_bytes() if gpu else None)
        s["power"].append(gpu.power_w() if gpu else None)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.sample()

    def run_start(self, meta: dict[str, Any]) -> None:
        self._open_gpu()
        self.process.cpu_percent(interval=None)  # the first call only sets the reference point
        self.t_start = time.monotonic()
        self.gpu_energy_start = self.gpu.energy_j() if self.gpu else None
        self.cpu_energy_start = _rapl_read(self.rapl)
        self.thread = threading.Thread(target=self._loop, name="mlscale-monitor", daemon=True)
        self.thread.start()

    def run_end(self, status: str) -> None:
        if self.thread is None:
            return
        self.stop_event.set()
        self.thread.join()
        self.sample()  # at least one sample, even for a run shorter than the interval
        self.t_end = time.monotonic()
        self.gpu_energy_end = self.gpu.energy_j() if self.gpu else None
        self.cpu_energy_end = _rapl_read(self.rapl)
        if self.gpu:
            self.gpu.close()

    def _gpu_energy(self) -> float | None:
        if self.gpu_energy_start is not None and self.gpu_energy_end is not None:
            return self.gpu_energy_end - self.gpu_energy_start
        t, p = self.samples["t"], self.samples["power"]
        pairs = [(ti, pi) for ti, pi in zip(t, p, strict=True) if pi is not None]
        if len(pairs) < 2:
            return None
        ts, ps = np.array(pairs).T
        return float(np.trapezoid(ps, ts)) if hasattr(np, "trapezoid") else float(np.trapz(ps, ts))

    def rank_summary(self) -> dict[str, Any]:
        s = self.samples
        cpu_energy = (
            self.cpu_energy_end - self.cpu_energy_start
            if self.cpu_energy_start is not None and self.cpu_energy_end is not None
            else None
        )
        return {
            "samples": len(s["t"]),
            "interval_s": self.interval,
            "duration_s": (self.t_end - self.t_start) if self.t_end is not None else None,
            "cpu_percent_mean": _mean(s["cpu"]),
            "cpu_percent_max": _max(s["cpu"]),
            "rss_max_bytes": _max(s["rss"]),
            "gpu_util_percent_mean": _mean(s["gpu_util"]),
            "gpu_mem_max_bytes": _max(s["gpu_mem"]),
            "gpu_power_w_mean": _mean(s["power"]),
            "gpu_energy_j": self._gpu_energy(),
            "cpu_energy_j": cpu_energy,
        }

    def record_fields(self, record: dict[str, Any], rank_summaries: list[dict[str, Any]]) -> dict[str, Any]:
        # The runner files each observer's rank summary under "observers" in the rank's line.
        ranks = [(r.get("observers") or {}).get(self.name) or {} for r in rank_summaries]
        ranks = [r for r in ranks if r]
        if not ranks:
            return {}

        def col(key: str) -> list:
            return [r.get(key) for r in ranks]

        gpu_e, cpu_e = (
            [e for e in col("gpu_energy_j") if e is not None],
            [e for e in col("cpu_energy_j") if e is not None],
        )
        energy = sum(gpu_e) + sum(cpu_e) if (gpu_e or cpu_e) else None
        summary = {
            "cpu_percent_mean": _mean(col("cpu_percent_mean")),
            "rss_max_bytes": _max(col("rss_max_bytes")),
            "gpu_util_percent_mean": _mean(col("gpu_util_percent_mean")),
            "gpu_mem_max_bytes": _max(col("gpu_mem_max_bytes")),
            "gpu_power_w_mean": _mean(col("gpu_power_w_mean")),
            "energy_j": energy,
        }
        fields: dict[str, Any] = {"monitor": summary}
        samples = _samples_processed(record)
        if energy is not None and samples:
            fields["energy_per_sample_j"] = energy / samples
        return fields


def _samples_processed(record: dict[str, Any]) -> int:
    total = sum((e.get("train_samples") or 0) + (e.get("test_samples") or 0) for e in record.get("epoch_stats") or [])
    return total + int((record.get("inference") or {}).get("samples") or 0)
