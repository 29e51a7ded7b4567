"""The machine a measurement ran on, for benchmark rows (``envgym bench``, ``record --bench``,
the distributed benchmark)."""

from __future__ import annotations

import platform

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
