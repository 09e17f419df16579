"""onnxruntime sessions tuned for one-image-at-a-time requests on small CPUs.

- all graph optimisations (constant folding, conv+bn+activation fusion, layout transforms);
- sequential execution: the networks are chains, so parallel branch scheduling only adds
  overhead; parallelism comes from intra-op threads inside each operator;
- intra-op threads default to the usable CPUs (the container's cgroup quota counts), at most
  4: a Function App instance has 1-4 vCPUs and small convolutions stop scaling beyond that;
- no spinning: idle pool threads sleep instead of busy-waiting, so concurrent requests and
  cached sessions of other models don't burn the few cores between runs.
InferenceSession.run is thread-safe, so one session serves all concurrent requests.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnxruntime as ort

MAX_DEFAULT_THREADS = 4


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The container's CPU quota in cores (cgroup v2, then v1), or None when unlimited/unknown.

    Containers (Functions hosts included) often see every host core in the affinity mask while
    a quota allows only one or two; threads beyond the quota just get throttled."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def default_intra_op_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def session_options(intra_op_threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads or default_intra_op_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
    return options


def create_session(model: bytes, intra_op_threads: int | None = None) -> ort.InferenceSession:
    return ort.InferenceSession(
        model, sess_options=session_options(intra_op_threads), providers=["CPUExecutionProvider"]
    )
