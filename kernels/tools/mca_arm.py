#!/usr/bin/env python3
"""Throughput of the ARM int8 main loops on LLVM's core models (no ARM CPU is needed).

Cross-compiles kernels/src/arm/conv_int8_neon_dotprod.cc with -DKCSP_MCA_MARKERS (the main loop is
wrapped in LLVM-MCA-BEGIN/END comments), runs llvm-mca (Debian's llvm-19) on that region for each
core, and compares the MACs per cycle with the core's sdot peak, measured by llvm-mca on a loop of
independent sdot instructions (so both numbers come from the same model).

    python3 kernels/tools/mca_arm.py [--json out.json] [--cpus cortex-a55,cortex-a76,...]

The i8mm (smmla) variant does not exist yet; only the dotprod loop is measured.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "kernels", "src", "arm", "conv_int8_neon_dotprod.cc")
CPUS = ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")
MACS_PER_SDOT = 16  # 128-bit sdot: 4 lanes x 4 int8 products

# 24 independent accumulators, 2 sources: the sdot issue rate of the core with no dependency stall.
PEAK_LOOP = "\n".join(["// LLVM-MCA-BEGIN sdot_peak"] +
                      [f"sdot v{i}.4s, v30.16b, v31.4b[{i % 4}]" for i in range(24)] +
                      ["// LLVM-MCA-END sdot_peak", ""])


def tool(*names):
    for n in names:
        if shutil.which(n):
            return n
    sys.exit(f"missing {' or '.join(names)} (bash scripts/install.sh installs it)")


def region(asm_text, name):
    m = re.search(rf"LLVM-MCA-BEGIN {name}\n(.*?)LLVM-MCA-END {name}", asm_text, re.S)
    if not m:
        sys.exit(f"region {name} not found in the compiled assembly")
    body = [ln for ln in m.group(1).splitlines()
            if ln.strip() and not ln.strip().startswith(("//", "#", ".")) and "LLVM-MCA" not in ln]
    return "\n".join([f"// LLVM-MCA-BEGIN {name}"] + body + [f"// LLVM-MCA-END {name}", ""])


def mca(asm, cpu, mca_bin, iterations=200):
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write(asm)
    try:
        out = subprocess.run([mca_bin, "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={iterations}", f.name],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1))
    instrs = int(re.search(r"Instructions:\s+(\d+)", out).group(1))
    return cycles, instrs, iterations


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--cpus", default=",".join(CPUS))
    args = ap.parse_args(argv)
    cxx = tool("aarch64-linux-gnu-g++")
    mca_bin = tool("llvm-mca-19", "llvm-mca")
    asm = subprocess.run([cxx, "-O3", "-std=c++17", "-DKCSP_MCA_MARKERS", "-I", os.path.join(ROOT, "kernels", "include"),
                          "-S", "-o", "-", SOURCE], capture_output=True, text=True, check=True).stdout
    loop = region(asm, "neon_dotprod_4x16")
    sdots = sum(1 for ln in loop.splitlines() if ln.strip().startswith("sdot"))
    instrs = sum(1 for ln in loop.splitlines() if ln.strip() and not ln.strip().startswith("//"))
    rows = []
    for cpu in args.cpus.split(","):
        c, _, it = mca(loop, cpu, mca_bin)
        pc, _, pit = mca(PEAK_LOOP, cpu, mca_bin)
        macs = sdots * MACS_PER_SDOT * it / c
        peak = 24 * MACS_PER_SDOT * pit / pc
        rows.append({"cpu": cpu, "loop": "neon_dotprod_4x16", "instructions": instrs, "sdot": sdots,
                     "cycles_per_iteration": round(c / it, 2), "macs_per_cycle": round(macs, 2),
                     "peak_macs_per_cycle": round(peak, 2), "fraction_of_peak": round(macs / peak, 4)})
    print(f"neon_dotprod_4x16 main loop: {instrs} instructions, {sdots} sdot per iteration ({cxx} -O3)")
    print(f"{'core':14s} {'cycles/iter':>11s} {'MAC/cycle':>10s} {'peak':>6s} {'of peak':>8s}")
    for r in rows:
        print(f"{r['cpu']:14s} {r['cycles_per_iteration']:11.2f} {r['macs_per_cycle']:10.2f} "
              f"{r['peak_macs_per_cycle']:6.1f} {100 * r['fraction_of_peak']:7.1f}%")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"tool": mca_bin, "compiler": cxx, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
