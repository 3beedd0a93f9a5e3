"""Prometheus' standard process metrics, named as its client libraries name them, read from /proc.

`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
`process_open_fds`, `process_max_fds`, `process_start_time_seconds`: what dashboards made for
any exporter (and alerts such as "file descriptors nearly exhausted") expect. Outside Linux
there is no /proc and nothing is rendered.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

HELP = {
    "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds."),
    "process_resident_memory_bytes": ("gauge", "Resident memory size in bytes."),
    "process_virtual_memory_bytes": ("gauge", "Virtual memory size in bytes."),
    "process_open_fds": ("gauge", "Number of open file descriptors."),
    "process_max_fds": ("gauge", "Maximum number of open file descriptors."),
    "process_start_time_seconds": ("gauge", "Start time of the process since unix epoch in seconds."),
}


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def read_process(proc: Path = Path("/proc/self")) -> dict[str, float]:
    """The values of `proc` (a /proc/PID folder), by metric name; {} without /proc."""
    try:
        stat = (proc / "stat").read_text()
        open_fds = len(os.listdir(proc / "fd"))
        boot = _boot_time()
    except OSError:
        return {}
    fields = stat[stat.rindex(")") + 2:].split()  # after "(comm)", which may hold spaces; fields[0] is field 3
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    return {
        "process_cpu_seconds_total": (int(fields[11]) + int(fields[12])) / ticks,  # utime + stime
        "process_resident_memory_bytes": float(int(fields[21]) * page),
        "process_virtual_memory_bytes": float(fields[20]),
        "process_open_fds": float(open_fds),
        "process_max_fds": float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        "process_start_time_seconds": boot + int(fields[19]) / ticks,
    }


def render_process_metrics() -> str:
    """This process's metrics in the Prometheus text format ("" outside Linux)."""
    lines: list[str] = []
    for name, value in read_process().items():
        kind, help_text = HELP[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value!r}"]
    return "\n".join(lines) + "\n" if lines else ""
