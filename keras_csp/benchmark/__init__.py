"""Benchmarks: `models` times whole .tflite models (builtin vs fused, CSP vs plain; `keras-csp bench`),
`kernels` times the fused int8 kernels against XNNPACK on stage shapes (`keras-csp bench-kernels`).
Results and notes live in the source tree's `bench/`."""
from .models import (  # noqa: F401
    ZOO_PAIRS, bench_files, bench_zoo, cpu_name, export_ptq_int8, format_table, fuse_to, machine_info,
    plot_report)
