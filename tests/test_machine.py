"""The machine description and the bfloat16 capability check."""

from __future__ import annotations

import torch

from rim_monai import machine


def test_cpu_model_and_flags_are_strings():
    assert isinstance(machine.cpu_model(), str) and machine.cpu_model()
    assert all(isinstance(flag, str) for flag in machine.cpu_flags())


def test_fast_bfloat16_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ["model name : X", "flags : fpu sse avx512f amx_bf16 amx_tile"])
    assert machine.fast_bfloat16("cpu") and machine.cpu_flags() >= {"amx_bf16", "fpu"}
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ["model name : Y", "flags : fpu sse avx2"])
    assert not machine.fast_bfloat16(torch.device("cpu"))
    monkeypatch.setattr(machine, "_cpuinfo", lambda: [])
    assert not machine.fast_bfloat16("cpu") and machine.cpu_flags() == set()
    assert machine.fast_bfloat16("cuda") == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
