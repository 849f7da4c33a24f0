"""Operator throughput: forward + adjoint samples per second, against the tools a user would otherwise pick.

CT: :class:`~rim_monai.operators.RayTransform` with the ``matrix`` backend (batched sparse matmul) and the ``odl``
backend (per-sample ODL/ASTRA through :func:`~rim_monai.operators.from_odl`), against ODL's own torch wrapper
``odl.contrib.torch.OperatorModule`` (ray transform and its adjoint), for parallel and fan beam, 128² and 256²,
60 and 180 views, batch 1, 8 and 32.

MRI: :class:`~rim_monai.operators.MaskedFourier` (single-coil and 8-coil, 320²) against the same operator built
from MONAI's ``monai.networks.blocks.fft_utils_t.fftn_centered_t`` / ``ifftn_centered_t`` (checked to give the same
numbers first).

One "sample" is one forward and one adjoint application to a ``(1, 1, H, W)`` image. Timings are the median of
repeated runs after a warm-up. Run::

    python -m rim_monai.benchmarks.operators                    # full table -> docs/benchmarks/operators.{md,json}
    python -m rim_monai.benchmarks.operators --quick --out /tmp  # a tiny smoke run

The machine (CPU model, cores, torch threads and versions) is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rim_monai.data.file_utils import atomic_write_text
from rim_monai.machine import cpu_model

__all__ = ["time_it", "bench_ct", "bench_mri", "machine_info", "main"]


def time_it(fn: Callable[[], Any], min_time: float = 0.5, min_repeats: int = 3, max_repeats: int = 50) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call, over at least ``min_repeats`` runs or
    ``min_time`` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch threads and library versions."""
    cpu = cpu_model()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for name in ("odl", "astra", "monai"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # pragma: no cover - optional
            info[name] = None
    return info


def bench_ct(sizes, views, geometries, batches, min_time: float, log=print) -> list[dict[str, Any]]:
    """Forward+adjoint throughput of the ray transform backends and ODL's ``OperatorModule``."""
    from odl.applications import tomo
    from odl.contrib.torch import OperatorModule

    from rim_monai.operators import RayTransform

    rows = []
    for geometry in geometries:
        for size in sizes:
            for num_angles in views:
                t0 = time.perf_counter()
                matrix_op = RayTransform((size, size), num_angles, geometry=geometry, backend="matrix")
                assembly = time.perf_counter() - t0
                odl_op = matrix_op.replace(backend="odl")
                ray = tomo.RayTransform(matrix_op.space, matrix_op.odl_geometry, impl="astra_cpu")
                module, module_adj = OperatorModule(ray), OperatorModule(ray.adjoint)
                for batch in batches:
                    x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0))
                    y = matrix_op(x)
                    methods = {
                        "matrix": lambda: (matrix_op(x), matrix_op.adjoint(y)),
                        "odl backend": lambda: (odl_op(x), odl_op.adjoint(y)),
                        "ODL OperatorModule": lambda: (module(x), module_adj(y)),
                    }
                    with torch.no_grad():
                        seconds = {name: time_it(fn, min_time) for name, fn in methods.items()}
                    base = seconds["ODL OperatorModule"]
                    row = {
                        "geometry": geometry, "size": size, "views": num_angles, "batch": batch,
                        "detectors": matrix_op.num_detectors, "nnz": matrix_op.system_matrix.nnz,
                        "assembly_s": round(assembly, 3),
                        "samples_per_s": {k: batch / v for k, v in seconds.items()},
                        "speedup_vs_OperatorModule": {k: base / v for k, v in seconds.items()},
                    }
                    rows.append(row)
                    log(f"CT {geometry:8s} {size}² {num_angles:3d} views batch {batch:2d}: "
                        + ", ".join(f"{k} {batch / v:9.1f}/s" for k, v in seconds.items())
                        + f"  matrix/OperatorModule {base / seconds['matrix']:.1f}x")
    return rows


def bench_mri(size: int, coils_list, batches, min_time: float, log=print) -> list[dict[str, Any]]:
    """Forward+adjoint throughput of MaskedFourier and the same operator from MONAI's centred FFT helpers."""
    from monai.networks.blocks.fft_utils_t import fftn_centered_t, ifftn_centered_t

    from rim_monai.operators import MaskedFourier

    rows = []
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(size, size, generator=g) < 0.3).to(torch.float32)
    mask[:, size // 2 - 12 : size // 2 + 12] = 1.0
    for coils in coils_list:
        for batch in batches:
            sens = None
            if coils > 1:
                sens = torch.complex(torch.randn(batch, coils, size, size, generator=g),
                                     torch.randn(batch, coils, size, size, generator=g))
                sens = sens / torch.sqrt((sens.abs() ** 2).sum(1, keepdim=True))
            op = MaskedFourier(mask, sens=sens)
            x = torch.complex(torch.randn(batch, 1, size, size, generator=g), torch.randn(batch, 1, size, size, generator=g))
            k = op(x)

            def monai_forward(image: torch.Tensor) -> torch.Tensor:
                coil_images = image * sens if sens is not None else image
                kspace = fftn_centered_t(torch.view_as_real(coil_images), spatial_dims=2, is_complex=True)
                return torch.view_as_complex(kspace.contiguous()) * mask

            def monai_adjoint(kspace: torch.Tensor) -> torch.Tensor:
                image = ifftn_centered_t(torch.view_as_real(kspace * mask), spatial_dims=2, is_complex=True)
                image = torch.view_as_complex(image.contiguous())
                return (sens.conj() * image).sum(1, keepdim=True) if sens is not None else image

            torch.testing.assert_close(monai_forward(x), k, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(monai_adjoint(k), op.adjoint(k), rtol=1e-4, atol=1e-4)
            methods = {
                "MaskedFourier": lambda: (op(x), op.adjoint(k)),
                "MONAI fft_utils_t": lambda: (monai_forward(x), monai_adjoint(k)),
            }
            with torch.no_grad():
                seconds = {name: time_it(fn, min_time) for name, fn in methods.items()}
            base = seconds["MONAI fft_utils_t"]
            rows.append({
                "size": size, "coils": coils, "batch": batch,
                "samples_per_s": {k_: batch / v for k_, v in seconds.items()},
                "speedup_vs_MONAI": {k_: base / v for k_, v in seconds.items()},
            })
            log(f"MRI {size}² coils {coils} batch {batch:2d}: "
                + ", ".join(f"{k_} {batch / v:8.1f}/s" for k_, v in seconds.items())
                + f"  ratio {base / seconds['MaskedFourier']:.2f}x")
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Operator benchmark",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"odl {m['odl']}, astra {m['astra']}, monai {m['monai']}; date {result['date']}.",
        "",
        "Forward + adjoint throughput in samples/s (one sample = one `(1, 1, H, W)` image through `A` and `A^T`);",
        "higher is better. `x` columns are speed-ups over ODL's `odl.contrib.torch.OperatorModule`.",
        "",
        "| geometry | size | views | batch | matrix | odl backend | ODL OperatorModule | matrix / OperatorModule |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["ct"]:
        s = r["samples_per_s"]
        lines.append(
            f"| {r['geometry']} | {r['size']}² | {r['views']} | {r['batch']} | {s['matrix']:.1f} | "
            f"{s['odl backend']:.1f} | {s['ODL OperatorModule']:.1f} | {r['speedup_vs_OperatorModule']['matrix']:.1f}x |"
        )
    assembly = {(r["geometry"], r["size"], r["views"]): (r["assembly_s"], r["nnz"]) for r in result["ct"]}
    lines += ["", "One-time system-matrix assembly (ASTRA CPU projector, cached per geometry):", "",
              "| geometry | size | views | seconds | non-zeros |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {g} | {s}² | {v} | {a:.2f} | {n:,} |" for (g, s, v), (a, n) in assembly.items()]
    if result["mri"]:
        lines += ["", "| MRI size | coils | batch | MaskedFourier | MONAI fft_utils_t | ratio |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in result["mri"]:
            s = r["samples_per_s"]
            lines.append(f"| {r['size']}² | {r['coils']} | {r['batch']} | {s['MaskedFourier']:.1f} | "
                         f"{s['MONAI fft_utils_t']:.1f} | {r['speedup_vs_MONAI']['MaskedFourier']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", default="docs/benchmarks", help="folder for operators.md and operators.json")
    parser.add_argument("--min-time", type=float, default=None, help="seconds of repeats per timing")
    parser.add_argument("--skip-mri", action="store_true", help="CT only")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.quick:
        sizes, views, batches, mri_size, min_time = (32,), (12,), (1, 4), 32, 0.05
    else:
        sizes, views, batches, mri_size, min_time = (128, 256), (60, 180), (1, 8, 32), 320, 0.5
    min_time = args.min_time if args.min_time is not None else min_time
    info = machine_info()
    print(f"machine: {info}")
    result = {
        "command": "python -m rim_monai.benchmarks.operators" + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads is not None else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": info,
        "ct": bench_ct(sizes, views, ("parallel", "fan"), batches, min_time),
        "mri": [] if args.skip_mri else bench_mri(mri_size, (1, 8), batches, min_time),
    }
    out = Path(args.out)
    markdown = to_markdown(result)
    atomic_write_text(out / "operators.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "operators.md", markdown)
    print(markdown)
    return result


if __name__ == "__main__":
    main()
