"""The line every benchmark prints above its table: when, on what, with which versions.
Results are only comparable on the same kind of machine, so RESULTS.md keeps this line."""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import version
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(packages: tuple[str, ...], *extra: str) -> str:
    """'2026-11-29 17:30 UTC; Linux 6.18 x86_64; AMD EPYC x2; Python 3.11.7; Django 5.2.19,
    ...; <extra>; load average 0.52 0.61 0.70'."""
    installed = ", ".join(f"{name} {version(name)}" for name in packages)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return "; ".join([
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        f"{platform.system()} {platform.release()} {platform.machine()}",
        f"{cpu_model()} x{os.cpu_count()}", f"Python {platform.python_version()}",
        installed, *extra, f"load average {load}"])
