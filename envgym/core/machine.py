"""The conditions a measurement ran under, for benchmark rows (``envgym bench``, ``record
--bench``, the distributed benchmark): the machine (its name, and the CPU's family, model,
clock and caches, which tell apart VMs that report the same name), the time and the command
line. :func:`provenance` is the one place that says what a row records about them."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch


def device_name(device: torch.device) -> str:
    """A human-readable name of the device timings were taken on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    # Linux: the CPU model is more telling than platform.processor()'s "x86_64"
    name = _first_processor().get("model name")
    return name or platform.processor() or platform.machine() or "cpu"


def _first_processor(cpuinfo: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's block of ``cpuinfo`` as ``{field: value}`` (``{}`` where the file
    can't be read: not Linux)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError), open(cpuinfo, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                break  # the end of the first processor's block
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


_CPUINFO_FIELDS = {
    "vendor_id": "vendor",
    "cpu family": "family",
    "model": "model",
    "stepping": "stepping",
    "cpu MHz": "mhz",
}
"""``/proc/cpuinfo`` fields of :func:`cpu_details`, by the key each is reported under."""


def cpu_details(
    cpuinfo: str = "/proc/cpuinfo", cache_dir: str = "/sys/devices/system/cpu/cpu0/cache"
) -> dict[str, Any]:
    """What tells two CPUs apart when their model name doesn't (a VM often reports only "AMD
    EPYC"): the vendor, family, model and stepping of the first processor, its clock (MHz), the
    logical CPUs and the caches (``L1d``, ``L1i``, ``L2``, ``L3`` as the kernel writes their
    sizes, e.g. ``"512K"``). Linux only; elsewhere, or for whatever can't be read, the key is
    left out (``{}`` at worst)."""
    out: dict[str, Any] = {"cpus": os.cpu_count()}
    fields = _first_processor(cpuinfo)
    out.update({name: fields[key] for key, name in _CPUINFO_FIELDS.items() if key in fields})
    for index in sorted(Path(cache_dir).glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return {k: v for k, v in out.items() if v is not None}


def timestamp() -> str:
    """Now in UTC, to the second (ISO 8601): a row's ``date``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def command_line(command: str | None = None) -> str:
    """A row's ``command``: ``command`` where given, else this process's command line."""
    return command if command is not None else " ".join(sys.argv)


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` of installed distributions (``"not installed"`` for one that
    isn't), from their metadata: what a row records of the software it measured."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(
    command: str | None = None, packages: tuple[str, ...] = ("envgym", "torch")
) -> dict[str, Any]:
    """What every benchmark row records about the conditions it ran under (ARCHITECTURE §8),
    to be spread into the row: ``date`` (UTC, :func:`timestamp`), ``python``, ``platform``,
    ``cpu`` (:func:`cpu_details`: what tells two VMs apart), ``load_average`` (1, 5 and 15
    minutes, :func:`load_average`, read now: call it at the row's end; other processes' load
    changes every figure),
    ``torch_threads``, ``command`` (:func:`command_line`) and one key per name in
    ``packages`` holding its version (:func:`package_versions`)."""
    return {
        "date": timestamp(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_details(),
        "load_average": load_average(),
        "torch_threads": torch.get_num_threads(),
        "command": command_line(command),
        **package_versions(packages),
    }


def load_average() -> list[float] | None:
    """The system's load average over 1, 5 and 15 minutes (``os.getloadavg``), or ``None``
    where the OS has none (not Unix)."""
    getloadavg = getattr(os, "getloadavg", None)
    return list(getloadavg()) if getloadavg is not None else None
