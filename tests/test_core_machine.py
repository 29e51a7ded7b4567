"""The machine a benchmark row names (``envgym.core.machine``)."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
import torch

import envgym
from envgym.core import machine
from envgym.core.machine import cpu_details, package_versions, provenance

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 2
cpu MHz\t\t: 1996.248
cache size\t: 512 KB

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
"""


def _cache(root: Path, index: int, level: int, kind: str, size: str) -> None:
    d = root / f"index{index}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_cpu_details_reads_the_first_processor_and_the_caches(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    caches = tmp_path / "cache"
    _cache(caches, 0, 1, "Data", "32K")
    _cache(caches, 1, 1, "Instruction", "64K")
    _cache(caches, 2, 2, "Unified", "512K")
    _cache(caches, 3, 3, "Unified", "8192K")
    assert cpu_details(str(info), str(caches)) == {
        "cpus": os.cpu_count(),
        "vendor": "AuthenticAMD",
        "family": "23",
        "model": "1",
        "stepping": "2",
        "mhz": "1996.248",
        "L1d": "32K",
        "L1i": "64K",
        "L2": "512K",
        "L3": "8192K",
    }


def test_cpu_details_leaves_out_what_it_cannot_read(tmp_path: Path) -> None:
    caches = tmp_path / "cache"
    _cache(caches, 0, 2, "Unified", "1M")
    (caches / "index1").mkdir()  # a cache entry without its files
    got = cpu_details(str(tmp_path / "missing"), str(caches))
    assert got == {"cpus": os.cpu_count(), "L2": "1M"}
    assert cpu_details(str(tmp_path / "missing"), str(tmp_path / "none")) == {
        "cpus": os.cpu_count()
    }


def test_provenance_names_the_software_machine_load_and_command() -> None:
    row = provenance("envgym bench x", packages=("torch", "gymnasium"))
    assert row["command"] == "envgym bench x"
    # The distribution's metadata, not ``torch.__version__``: PyPI's CUDA wheel says "2.13.0"
    # in its metadata and "2.13.0+cu130" in ``__version__`` (seen on Python 3.12).
    assert row["torch"] == importlib.metadata.version("torch")
    assert row["gymnasium"] == importlib.metadata.version("gymnasium")
    assert row["cpu"] == cpu_details() and row["torch_threads"] == torch.get_num_threads()
    assert len(row["load_average"]) == 3 and all(x >= 0 for x in row["load_average"])
    assert row["date"].endswith("+00:00")  # UTC
    assert set(row) == {
        "date", "python", "platform", "cpu", "load_average", "torch_threads", "command",
        "torch", "gymnasium",
    }  # fmt: skip


def test_a_package_that_is_not_installed_is_named_so() -> None:
    got = package_versions(("envgym", "no-such-distribution-xyz"))
    assert got == {"envgym": envgym.__version__, "no-such-distribution-xyz": "not installed"}


def test_no_load_average_where_the_os_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(machine.os, "getloadavg")
    assert machine.load_average() is None
    assert provenance()["load_average"] is None
