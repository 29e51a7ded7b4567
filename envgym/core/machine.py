"""The conditions a measurement ran under, for benchmark rows (``envgym bench``, ``record
--bench``, the distributed benchmark): the machine, the time and the command line."""

from __future__ import annotations

import datetime as dt
import platform
import sys

import torch


def device_name(device: torch.device) -> str:
    """A human-readable name of the device timings were taken on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:  # Linux: the CPU model is more telling than platform.processor()'s "x86_64"
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def timestamp() -> str:
    """Now in UTC, to the second (ISO 8601): a row's ``date``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def command_line(command: str | None = None) -> str:
    """A row's ``command``: ``command`` where given, else this process's command line."""
    return command if command is not None else " ".join(sys.argv)
