"""Describing the machine a benchmark or evaluation ran on, and what its hardware computes fast."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["cpu_model", "cpu_flags", "fast_bfloat16"]

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 matrix arithmetic: Intel AMX tiles and AVX-512 BF16
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    for line in _cpuinfo():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def fast_bfloat16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively: a CUDA GPU that supports bfloat16, or a CPU with
    one of :data:`BFLOAT16_CPU_FLAGS`. Elsewhere bfloat16 is emulated and slower than float32, so mixed precision is
    only worth turning on where this is ``True``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(cpu_flags() & set(BFLOAT16_CPU_FLAGS))
