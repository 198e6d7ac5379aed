"""The header every benchmark table carries, so that a reader can tell which machine and command made it."""

from __future__ import annotations

import os
import platform
import shlex
import sys

import torch


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``lscpu``'s "Model name"), else what Python knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str = "cpu") -> str:
    """'AMD EPYC (2 cores, 2 torch threads), torch 2.x, Python 3.x' plus the GPU's name on CUDA, and the
    command line that ran."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = f"{cpu_model()} ({usable} cores, {torch.get_num_threads()} torch threads)"
    if device.startswith("cuda") and torch.cuda.is_available():
        machine += f", {torch.cuda.get_device_name(torch.device(device))}"
    command = shlex.join(["python", *sys.argv])
    return f"{machine}, torch {torch.__version__}, Python {platform.python_version()}\ncommand: {command}"
