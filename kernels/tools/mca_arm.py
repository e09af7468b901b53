#!/usr/bin/env python3
"""Throughput of the ARM int8 main loops on LLVM's core models (no ARM CPU is needed).

Cross-compiles each NEON int8 variant with -DKCSP_MCA_MARKERS (its main loop is wrapped in
LLVM-MCA-BEGIN/END comments), runs llvm-mca (Debian's llvm-19) on that region for each core
model, and compares the MACs per cycle with the core's peak for the loop's instruction, measured by
llvm-mca on a loop of independent instructions (so both numbers come from the same model).

    python3 kernels/tools/mca_arm.py [--json out.json] [--loops neon_dotprod_6x16,...] [--clang]

Loops: neon_dotprod_6x16 (sdot), neon_dotprod_grouped_g4 / _g8 (the grouped conv's 3x3 block, ResNeXt's groups of 4 / 8), neon_i8mm_4x16 (smmla; only the cores that have i8mm) and
neon_mlal_4x16 (smlal, the fallback for cores without dotprod, such as the Cortex-A53) and its
Winograd F(2x2, 3x3) products (neon_mlal_winograd_4x16), with its input / output transforms for a
modeled 3x3 conv against the direct loop. Also the
post-op table loop (neon_table_48: the SiLU / HARD_SWISH / LEAKY_RELU table after an activated conv),
in cycles per 16 bytes. And the 3x3 depthwise kernels, plain NEON (neon_depthwise_3x3) and sdot
(neon_dotprod_depthwise_3x3), in cycles per output pixel and 16 channels. And the dotprod kernel's
requantization of a full 6x16 tile from its registers (neon_dotprod_requant_6x16), with a 1x1 conv's
whole tile modeled from it and the loop at K = 64-512 (dotprod_1x1_tile_rows). And the dotprod
kernel's one-pixel tail tile against the 6-pixel tile it replaced (dotprod_tail_rows).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARM = os.path.join(ROOT, "kernels", "src", "arm")


@dataclass(frozen=True)
class Loop:
    name: str         # the LLVM-MCA region name in the source
    source: str       # file under kernels/src/arm
    march: str        # what the build gives that file (the Android CMake flags)
    instruction: str  # the MAC instruction counted (smlal also counts smlal2)
    macs: int         # int8 multiply-accumulates per instruction (128-bit forms)
    peak_line: str    # one independent instance, {acc} = accumulator register
    cpus: tuple


LOOPS = (
    Loop("neon_dotprod_6x16", "conv_int8_neon_dotprod.cc", "armv8.2-a+dotprod", "sdot", 16,
         "sdot {acc}.4s, v30.16b, v31.4b[0]", ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
    # the grouped kernel (ResNeXt's groups of 4 or 8): one 3x3 block of 4 pixels x 16 channels,
    # accumulators zeroed to sums ready (the epilogue not included), every sdot's MACs real
    Loop("neon_dotprod_grouped_g4", "grouped_int8_neon_dotprod.cc", "armv8.2-a+dotprod", "sdot", 16,
         "sdot {acc}.4s, v30.16b, v31.4b[0]", ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
    Loop("neon_dotprod_grouped_g8", "grouped_int8_neon_dotprod.cc", "armv8.2-a+dotprod", "sdot", 16,
         "sdot {acc}.4s, v30.16b, v31.4b[0]", ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
    Loop("neon_i8mm_4x16", "conv_int8_neon_i8mm.cc", "armv8.2-a+i8mm", "smmla", 32,
         "smmla {acc}.4s, v30.16b, v31.16b", ("cortex-a710", "neoverse-v1")),
    Loop("neon_mlal_4x16", "conv_int8_neon.cc", "armv8-a", "smlal", 4,
         "smlal {acc}.4s, v30.4h, v15.h[0]", ("cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710")),
    # plain NEON's Winograd F(2x2, 3x3) products: smlal on int16 U (its "MACs" are products of the
    # transformed tile, 2.25x fewer than the direct conv's for the same outputs)
    Loop("neon_mlal_winograd_4x16", "conv_int8_neon_winograd.cc", "armv8-a", "smlal", 4,
         "smlal {acc}.4s, v30.4h, v15.h[0]", ("cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710")),
)
# Depthwise: one output pixel's 16 channels of a 3x3 (144 MACs) per iteration, the plain NEON
# kernel's interior block and the dotprod kernel's column path. (region, source, -march, cores)
DEPTHWISE_LOOPS = (
    ("neon_depthwise_3x3", "depthwise_int8_neon.cc", "armv8-a",
     ("cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
    ("neon_dotprod_depthwise_3x3", "depthwise_int8_neon_dotprod.cc", "armv8.2-a+dotprod",
     ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
)
DEPTHWISE_MACS = 3 * 3 * 16
# Element-wise loops: (region name, source, -march, bytes per iteration, cores).
BYTE_LOOPS = (
    ("neon_table_48", "elementwise_neon.cc", "armv8-a", 48, ("cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1")),
)
PEAK_ACCUMULATORS = [r for r in range(30) if r != 15][:24]  # v15: smlal's by-element operand
# Plain NEON's Winograd F(2x2, 3x3) beyond its product loop: the input transform of one tile's 8
# channels and the output transform of one tile's 16 (regions of conv_int8_neon_winograd.cc).
# (region, source, -march, cores)
WINOGRAD_REGIONS = (
    ("neon_winograd_input_8", "conv_int8_neon_winograd.cc", "armv8-a", LOOPS[-1].cpus),
    ("neon_winograd_output_16", "conv_int8_neon_winograd.cc", "armv8-a", LOOPS[-1].cpus),
)
WINOGRAD_SHAPES = ((128, 32), (64, 64), (128, 128), (256, 256))  # 3x3 convs (K in, N out)
# The dotprod kernel's requantization of a full 6x16 tile (fp32, from the registers) and the 1x1
# convs it is modeled for: a tile is K/16 iterations of neon_dotprod_6x16 and one requantization.
# (region, source, -march, cores)
REQUANT_REGIONS = (
    ("neon_dotprod_requant_6x16", "conv_int8_neon_dotprod.cc", "armv8.2-a+dotprod", LOOPS[0].cpus),
)
TILE_K = (64, 128, 256, 512)
# The dotprod kernel's tail tile of one pixel (KernelTail<1>: an image's last pixel, a 7x7 image's
# 49th), two K steps of 4 input channels per iteration, against what that pixel cost as a 6-pixel
# tile before (the 6x16 loop, whose iteration is four steps). (region, source, -march, cores)
TAIL_REGIONS = (
    ("neon_dotprod_tail_1x16", "conv_int8_neon_dotprod.cc", "armv8.2-a+dotprod", LOOPS[0].cpus),
)


def tile_model(k, loop_cycles, requant_cycles, peak_macs_per_cycle):
    """A 1x1 conv's 6x16 dotprod tile at K input channels: modeled cycles (K/16 loop iterations, then
    the requantization, without overlap) and the fraction of the sdot peak that makes."""
    cycles = k / 16 * loop_cycles + requant_cycles
    return cycles, 6 * 16 * k / cycles / peak_macs_per_cycle


def winograd_model(k, n, direct_loop, product_loop, input_8, output_16):
    """Modeled cycles of a 3x3 stride-1 conv per 2x2 outputs and 16 output channels, plain NEON, without
    the requantization (the same four rows either way): direct, 9 taps x K/4 iterations of the 4x16 loop
    (4 pixels); Winograd, 16 positions x K/4 iterations of its 4x16 loop (4 tiles) / 4, the output
    transform, and the input transform (K/8 of 8 channels) shared by the N/16 channel blocks."""
    direct = 9 * k / 4 * direct_loop
    winograd = 16 * k / 4 * product_loop / 4 + output_16 + k / 8 * input_8 / (n / 16)
    return direct, winograd


def tool(*names):
    for n in names:
        if shutil.which(n):
            return n
    sys.exit(f"missing {' or '.join(names)} (bash scripts/install.sh installs it)")


def region(asm_text, name):
    m = re.search(rf"LLVM-MCA-BEGIN {name}\n(.*?)LLVM-MCA-END {name}", asm_text, re.S)
    if m:
        text = m.group(1)
    else:
        # GCC rotated the loop, END before BEGIN: one iteration runs from BEGIN to its first
        # unconditional branch, then from that branch's label to END.
        begin = asm_text.find(f"LLVM-MCA-BEGIN {name}")
        jump = re.compile(r"^\s+b\s+(\.L\w+)\s*$", re.M).search(asm_text, max(begin, 0))
        label = asm_text.find(f"\n{jump.group(1)}:") if jump else -1
        end = asm_text.find(f"LLVM-MCA-END {name}", max(label, 0))
        if begin < 0 or label < 0 or end < 0:
            sys.exit(f"region {name} not found in the compiled assembly")
        text = asm_text[begin:jump.start()] + asm_text[label:end]
    body = [ln for ln in text.splitlines()
            if ln.strip() and not ln.strip().startswith(("//", "#", ".")) and "LLVM-MCA" not in ln]
    return "\n".join([f"// LLVM-MCA-BEGIN {name}"] + body + [f"// LLVM-MCA-END {name}", ""])


def peak_loop(loop):
    return "\n".join(["// LLVM-MCA-BEGIN peak"] + [loop.peak_line.format(acc=f"v{r}") for r in PEAK_ACCUMULATORS]
                     + ["// LLVM-MCA-END peak", ""])


def count(asm, instruction):
    return sum(1 for ln in asm.splitlines() if re.match(rf"\s*{instruction}2?\s", ln))


def mca(asm, cpu, mca_bin, iterations=200):
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write(asm)
    try:
        out = subprocess.run([mca_bin, "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={iterations}", f.name],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1))
    return cycles / iterations


def marked_region(cxx, source, march, name):
    """The LLVM-MCA region `name` of kernels/src/arm/`source` as `cxx` -O3 compiles it for `march`."""
    asm = subprocess.run([*cxx.split(), "-O3", "-std=c++17", f"-march={march}", "-DKCSP_MCA_MARKERS",
                          "-I", os.path.join(ROOT, "kernels", "include"), "-S", "-o", "-",
                          os.path.join(ARM, source)], capture_output=True, text=True, check=True).stdout
    return region(asm, name)


def region_cycles(cxx, mca_bin, loops, wanted):
    """(loop, core, cycles per iteration) for each wanted loop (name, source, march, ..., cores) and core."""
    for lp in loops:
        if lp[0] not in wanted:
            continue
        body = marked_region(cxx, lp[1], lp[2], lp[0])
        for cpu in lp[-1]:
            yield lp, cpu, mca(body, cpu, mca_bin)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--clang", action="store_true",
                    help="compile with clang++ --target=aarch64-linux-gnu (the Android NDK's compiler family) "
                         "instead of aarch64-linux-gnu-g++")
    ap.add_argument("--loops", default=",".join([lp.name for lp in LOOPS] + [d[0] for d in DEPTHWISE_LOOPS]
                                                 + [b[0] for b in BYTE_LOOPS] + [w[0] for w in WINOGRAD_REGIONS]
                                                 + [r[0] for r in REQUANT_REGIONS] + [t[0] for t in TAIL_REGIONS]))
    args = ap.parse_args(argv)
    cxx = f"{tool('clang++')} --target=aarch64-linux-gnu" if args.clang else tool("aarch64-linux-gnu-g++")
    mca_bin = tool("llvm-mca-19", "llvm-mca")
    wanted = args.loops.split(",")
    rows = []
    for lp in LOOPS:
        if lp.name not in wanted:
            continue
        body = marked_region(cxx, lp.source, lp.march, lp.name)
        n = count(body, lp.instruction)
        instrs = sum(1 for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("//")
                     and not ln.strip().endswith(":"))
        print(f"{lp.name}: {instrs} instructions, {n} {lp.instruction} per iteration ({cxx} -O3 -march={lp.march})")
        for cpu in lp.cpus:
            cycles = mca(body, cpu, mca_bin)
            peak = len(PEAK_ACCUMULATORS) * lp.macs / mca(peak_loop(lp), cpu, mca_bin)
            macs = n * lp.macs / cycles
            rows.append({"cpu": cpu, "loop": lp.name, "instruction": lp.instruction, "count": n,
                         "instructions": instrs, "cycles_per_iteration": round(cycles, 2),
                         "macs_per_cycle": round(macs, 2), "peak_macs_per_cycle": round(peak, 2),
                         "fraction_of_peak": round(macs / peak, 4)})
    dw_rows = [{"cpu": cpu, "loop": lp[0], "macs_per_iteration": DEPTHWISE_MACS,
                "cycles_per_iteration": round(cycles, 2), "macs_per_cycle": round(DEPTHWISE_MACS / cycles, 2)}
               for lp, cpu, cycles in region_cycles(cxx, mca_bin, DEPTHWISE_LOOPS, wanted)]
    table_rows = [{"cpu": cpu, "loop": lp[0], "bytes_per_iteration": lp[3], "cycles_per_iteration": round(cycles, 2),
                   "cycles_per_16_bytes": round(16 * cycles / lp[3], 2)}
                  for lp, cpu, cycles in region_cycles(cxx, mca_bin, BYTE_LOOPS, wanted)]
    # The Winograd model, where its loops and regions were measured.
    loop_cycles = {(r["loop"], r["cpu"]): r["cycles_per_iteration"] for r in rows}
    region = {(lp[0], cpu): cycles for lp, cpu, cycles in region_cycles(cxx, mca_bin, WINOGRAD_REGIONS, wanted)}
    wino_rows = []
    for cpu in LOOPS[-1].cpus:
        keys = [("neon_mlal_4x16", cpu), ("neon_mlal_winograd_4x16", cpu)]
        if not all(key in loop_cycles for key in keys) or ("neon_winograd_input_8", cpu) not in region \
                or ("neon_winograd_output_16", cpu) not in region:
            continue
        for k, n in WINOGRAD_SHAPES:
            direct, wino = winograd_model(k, n, loop_cycles[keys[0]], loop_cycles[keys[1]],
                                          region["neon_winograd_input_8", cpu], region["neon_winograd_output_16", cpu])
            wino_rows.append({"cpu": cpu, "k": k, "n": n, "input_8_cycles": region["neon_winograd_input_8", cpu],
                              "output_16_cycles": region["neon_winograd_output_16", cpu],
                              "direct_cycles": round(direct, 1), "winograd_cycles": round(wino, 1),
                              "modeled_speedup": round(direct / wino, 3)})
    # The 1x1 tile model, where the loop and the requantization were measured.
    dot = {r["cpu"]: r for r in rows if r["loop"] == "neon_dotprod_6x16"}
    tile_rows = []
    for lp, cpu, cycles in region_cycles(cxx, mca_bin, REQUANT_REGIONS, wanted):
        if cpu not in dot:
            continue
        for k in TILE_K:
            tile, fraction = tile_model(k, dot[cpu]["cycles_per_iteration"], cycles, dot[cpu]["peak_macs_per_cycle"])
            tile_rows.append({"cpu": cpu, "k": k, "requant_cycles": round(cycles, 2), "tile_cycles": round(tile, 1),
                              "requant_share": round(cycles / tile, 4), "fraction_of_peak": round(fraction, 4)})
    # A tail pixel's cost per 16 input channels (4 steps), alone and as a 6-pixel tile.
    tail_rows = [{"cpu": cpu, "loop": lp[0], "cycles_per_16_channels": round(2 * cycles, 2),
                  "six_pixel_tile_cycles_per_16_channels": dot[cpu]["cycles_per_iteration"],
                  "ratio": round(2 * cycles / dot[cpu]["cycles_per_iteration"], 4)}
                 for lp, cpu, cycles in region_cycles(cxx, mca_bin, TAIL_REGIONS, wanted) if cpu in dot]
    print(f"{'loop':24s} {'core':12s} {'cycles/iter':>11s} {'MAC/cycle':>10s} {'peak':>6s} {'of peak':>8s}")
    for r in rows:
        print(f"{r['loop']:24s} {r['cpu']:12s} {r['cycles_per_iteration']:11.2f} {r['macs_per_cycle']:10.2f} "
              f"{r['peak_macs_per_cycle']:6.1f} {100 * r['fraction_of_peak']:7.1f}%")
    for r in dw_rows:
        print(f"{r['loop']:24s} {r['cpu']:12s} {r['cycles_per_iteration']:11.2f} {r['macs_per_cycle']:10.2f} "
              "(one output pixel, 16 channels, 3x3)")
    for r in table_rows:
        print(f"{r['loop']:24s} {r['cpu']:12s} {r['cycles_per_iteration']:11.2f} "
              f"{r['cycles_per_16_bytes']:6.2f} cycles per 16 bytes")
    for r in wino_rows:
        print(f"3x3 {r['k']}->{r['n']} winograd  {r['cpu']:12s} {r['direct_cycles']:9.0f} direct {r['winograd_cycles']:9.0f} "
              f"winograd cycles per 2x2 outputs x 16 channels: {r['modeled_speedup']:.2f}x")
    for r in tile_rows:
        print(f"1x1 K={r['k']:<4d} dotprod 6x16 {r['cpu']:12s} {r['tile_cycles']:7.0f} cycles per tile, requantization "
              f"{r['requant_cycles']:.0f} ({100 * r['requant_share']:.1f} %): {100 * r['fraction_of_peak']:.1f}% of peak")
    for r in tail_rows:
        print(f"1-pixel tail, dotprod      {r['cpu']:12s} {r['cycles_per_16_channels']:7.1f} cycles per 16 input channels "
              f"(as a 6-pixel tile: {r['six_pixel_tile_cycles_per_16_channels']:.1f})")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"tool": mca_bin, "compiler": cxx, "rows": rows, "depthwise_rows": dw_rows,
                       "table_rows": table_rows, "winograd_model_rows": wino_rows,
                       "dotprod_1x1_tile_rows": tile_rows, "dotprod_tail_rows": tail_rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
