#!/usr/bin/env python3
"""How fast the AVX2 int8 conv's K step can run, against the exact int8 peak loop (x86-64, AVX2).

Assembles register-tile K steps as loops on L1-resident data (no epilogue, no staging), times them
in one process in alternating order, and reports G vpmaddwd/s, best and median over the rounds, and
each loop's ratio to the `peak` loop of the same round (vpmaddwd each feeding a vpaddd accumulator,
the mix that `bench-kernels` calls the exact int8 peak). Every loop is unrolled twice, as the
kernel's, and keeps its accumulators apart, so only the instruction mix differs.

    python3 kernels/tools/x86_step_probe.py [--rounds 15] [--json out.json] [--loops avx2_5x16,...]

Loops (MR pixels x NR channels; weights and staged activations are int16 pairs, as in
kernels/src/x86/conv_int8_avx2.cc):
  madd         vpmaddwd alone (the multiplier's issue rate)
  peak         vpmaddwd + dependent vpaddd, registers only
  avx2_5x16    2 int16 weight loads, 5 vpbroadcastd, 10 vpmaddwd + 10 vpaddd (the kernel until int8 packing)
  avx2_5x16sx  the committed kernel: the same with int8 weights widened by 2 vpmovsxbw loads
  avx2_6x16    6 pixels: 12 accumulators
  avx2_4x24    2 weight registers + 1 memory operand (17 registers otherwise), 4 broadcasts per 12 vpmaddwd
  avx2_2x32    4 weight registers, 2 broadcasts per 8 vpmaddwd
  avx2_3x32m   weights as vpmaddwd memory operands, 3 broadcasts per 12 vpmaddwd
  avx2_3x8c8   XNNPACK's c8 layout: a pixel's 8 K values by vbroadcasti128, no per-pair broadcast
               (needs a horizontal reduction per tile, not timed here)
  avx2_5x16v   activations staged already broadcast: vector loads instead of vpbroadcastd
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from keras_csp.benchmark.models import cpu_name  # noqa: E402  (the CPU name the benchmarks' JSON records)


def _regs(n_acc, *groups):
    """Accumulators ymm0..n_acc-1, then each group's registers; all distinct, at most 16."""
    out, nxt = [], n_acc
    for size in groups:
        out.append([f"%ymm{r}" for r in range(nxt, nxt + size)])
        nxt += size
    assert nxt <= 16, f"{nxt} ymm registers needed"
    return [f"%ymm{r}" for r in range(n_acc)], out


def _madd_only():
    acc, ((x, y),) = _regs(10, 2)
    return [f"vpmaddwd {x}, {y}, {a}" for a in acc], 10


def _peak():
    acc, ((x, y), tmp) = _regs(10, 2, 3)
    body = []
    for i, a in enumerate(acc):
        body += [f"vpmaddwd {x}, {y}, {tmp[i % 3]}", f"vpaddd {tmp[i % 3]}, {a}, {a}"]
    return body, 10


def _bcast_tile(mr, nv, nv_mem=0, load="vpbroadcastd", wload="vmovdqa"):
    """MR pixels x 8*NV channels: NV - nv_mem weight vectors loaded into registers, the last nv_mem
    read as vpmaddwd memory operands; one activation register (a broadcast int16 pair per pixel).
    wload "vpmovsxbw": the register weights are int8, 16 bytes widened per vector."""
    acc, (w, (b,), (t,)) = _regs(mr * nv, nv - nv_mem, 1, 1)
    a_step = 32 if load == "vmovdqa" else 4  # "vmovdqa": activations staged already broadcast
    body = []
    for step in range(2):
        wrow = step * 32 * nv
        if wload == "vpmovsxbw":
            body += [f"vpmovsxbw {step * 16 * nv + 16 * j}(%rsi), {w[j]}" for j in range(len(w))]
        else:
            body += [f"vmovdqa {wrow + 32 * j}(%rsi), {w[j]}" for j in range(len(w))]
        for i in range(mr):
            body.append(f"{load} {step * a_step + i * 512}(%rdx), {b}")
            for j in range(nv):
                src = w[j] if j < len(w) else f"{wrow + 32 * j}(%rsi)"
                body += [f"vpmaddwd {src}, {b}, {t}", f"vpaddd {t}, {acc[i * nv + j]}, {acc[i * nv + j]}"]
    return body, 2 * mr * nv


def _mem_weights(mr=3, nv=4):
    """Every weight vector a vpmaddwd memory operand; the MR pixels' broadcasts in registers."""
    acc, (b, (t,)) = _regs(mr * nv, mr, 1)
    body = []
    for step in range(2):
        body += [f"vpbroadcastd {step * 4 + i * 512}(%rdx), {b[i]}" for i in range(mr)]
        for i in range(mr):
            for j in range(nv):
                body += [f"vpmaddwd {step * 32 * nv + 32 * j}(%rsi), {b[i]}, {t}",
                         f"vpaddd {t}, {acc[i * nv + j]}, {acc[i * nv + j]}"]
    return body, 2 * mr * nv


def _c8(mr=3):
    """XNNPACK's c8 layout: a pixel's 8 K values in both lanes (vbroadcasti128), each weight vector
    two channels x 8 K values (a memory operand: 12 accumulators + 3 pixels + a product fill the 16
    registers); the tile's horizontal reduction is not timed."""
    acc, (a, (t,)) = _regs(mr * 4, mr, 1)
    body = []
    for step in range(2):
        body += [f"vbroadcasti128 {step * 16 + i * 512}(%rdx), {a[i]}" for i in range(mr)]
        for j in range(4):
            for i in range(mr):
                body += [f"vpmaddwd {step * 128 + j * 32}(%rsi), {a[i]}, {t}",
                         f"vpaddd {t}, {acc[i * 4 + j]}, {acc[i * 4 + j]}"]
    return body, 8 * mr


LOOPS = {
    "madd": _madd_only,
    "peak": _peak,
    "avx2_5x16": lambda: _bcast_tile(5, 2),
    "avx2_5x16sx": lambda: _bcast_tile(5, 2, wload="vpmovsxbw"),
    "avx2_6x16": lambda: _bcast_tile(6, 2),
    "avx2_4x24": lambda: _bcast_tile(4, 3, nv_mem=1),
    "avx2_2x32": lambda: _bcast_tile(2, 4),
    "avx2_3x32m": _mem_weights,
    "avx2_3x8c8": _c8,
    "avx2_5x16v": lambda: _bcast_tile(5, 2, load="vmovdqa"),
}

DRIVER = r"""
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
alignas(64) static int16_t W[8192];
alignas(64) static int16_t A[8192];
%(decls)s
typedef void (*Loop)(long, const void*, const void*);
static const Loop kLoops[] = {%(ptrs)s};
static const int kMadds[] = {%(madds)s};
int main(int argc, char** argv) {
  const int rounds = atoi(argv[1]);
  const long madds = atol(argv[2]);
  const int n = sizeof(kLoops) / sizeof(kLoops[0]);
  for (int r = 0; r < rounds; ++r) {
    for (int q = 0; q < n; ++q) {
      const int l = r %% 2 ? n - 1 - q : q;  // alternate the order between rounds
      double best = 1e30;
      for (int k = 0; k < 3; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        kLoops[l](madds / kMadds[l], W, A);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s < best) best = s;
      }
      printf("%%d %%d %%.4f\n", r, l, (madds / kMadds[l]) * kMadds[l] / best / 1e9);
    }
  }
}
"""


def check_registers(name, body):
    """The accumulators (the registers vpaddd writes, madd's outputs in `madd`) are written by
    nothing else: a product or a load landing in one would add a false dependency chain."""
    dest = [(i.split()[0], i.rsplit(",", 1)[1].strip()) for i in body]
    acc = {d for op, d in dest if op == "vpaddd"}
    clobbered = sorted({d for op, d in dest if op != "vpaddd"} & acc)
    assert not clobbered, f"{name}: accumulators {clobbered} are also written by other instructions"


def assemble(names):
    """The loops' AT&T assembly: void loop_NAME(long iterations, const int16_t* w, const int16_t* a)."""
    text = ["\t.text"]
    counts = []
    for name in names:
        body, madds = LOOPS[name]()
        assert sum(i.startswith("vpmaddwd") for i in body) == madds, name
        check_registers(name, body)
        counts.append(madds)
        # 64-byte aligned: unaligned, the 6x16 loop ran 7 % faster or slower from one layout to the next.
        text += [f"\t.globl loop_{name}", "\t.p2align 6", f"loop_{name}:", "1:"] + [f"\t{i}" for i in body]
        text += ["\tdec %rdi", "\tjnz 1b", "\tvzeroupper", "\tret"]
    text.append('\t.section .note.GNU-stack,"",@progbits')
    return "\n".join(text) + "\n", counts


def has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def run(names, rounds, madds, cxx="g++"):
    if platform.machine() not in ("x86_64", "AMD64") or not has_avx2():
        raise SystemExit("x86_step_probe: needs an x86-64 CPU with AVX2")
    if shutil.which(cxx) is None:
        raise SystemExit(f"x86_step_probe: {cxx} not found")
    asm, counts = assemble(names)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "loops.S"), "w") as f:
            f.write(asm)
        with open(os.path.join(d, "driver.cc"), "w") as f:
            f.write(DRIVER % {
                "decls": "\n".join(f'extern "C" void loop_{n}(long, const void*, const void*);' for n in names),
                "ptrs": ", ".join(f"loop_{n}" for n in names),
                "madds": ", ".join(map(str, counts)),
            })
        exe = os.path.join(d, "probe")
        subprocess.run([cxx, "-O2", "-o", exe, os.path.join(d, "driver.cc"), os.path.join(d, "loops.S")], check=True)
        out = subprocess.run([exe, str(rounds), str(madds)], check=True, capture_output=True, text=True).stdout
    rates = {n: [None] * rounds for n in names}
    for line in out.split("\n"):
        if line.strip():
            r, l, g = line.split()
            rates[names[int(l)]][int(r)] = float(g)
    return rates


def summarize(rates):
    """Per loop: best and median G vpmaddwd/s, and the median of its per-round ratio to `peak`."""
    rows = {}
    for name, v in rates.items():
        row = {"best_gmadd_s": max(v), "median_gmadd_s": statistics.median(v)}
        if "peak" in rates:
            row["vs_peak_median"] = statistics.median(x / p for x, p in zip(v, rates["peak"]))
            row["vs_peak_best"] = max(v) / max(rates["peak"])
        rows[name] = row
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", default=",".join(LOOPS), help="comma-separated loop names (default: all)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--madds", type=int, default=100_000_000, help="vpmaddwd per timing")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    names = args.loops.split(",")
    unknown = [n for n in names if n not in LOOPS]
    if unknown:
        ap.error(f"unknown loops {unknown}; known: {list(LOOPS)}")
    if "peak" not in names:
        names.insert(0, "peak")
    rows = summarize(run(names, args.rounds, args.madds))
    print(f"{cpu_name()}: G vpmaddwd/s over {args.rounds} rounds (alternating order); ratio to `peak`, same round")
    for name, r in rows.items():
        print(f"  {name:12s} best {r['best_gmadd_s']:5.2f}  median {r['median_gmadd_s']:5.2f}  "
              f"vs peak: median {r['vs_peak_median']:.3f}, best/best {r['vs_peak_best']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "rounds": args.rounds, "madds_per_timing": args.madds, "loops": rows}, f,
                      indent=1)


if __name__ == "__main__":
    sys.exit(main())
