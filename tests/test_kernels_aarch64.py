"""The ARM kernels (SME, i8mm, dotprod, plain NEON) pass the same C++ reference tests under qemu-aarch64.

Runs kernels/tools/test_aarch64.sh: cross-compiles the kernel library and its C++ tests with
g++-aarch64-linux-gnu and runs them under qemu (10, kernels/tools/fetch_qemu.sh: 7.2's SMOPA is
wrong) with -cpu max (SME with 256-bit streaming vectors, i8mm, dotprod and plain NEON vs the
scalar reference; dispatch picks sme), -cpu max,sme512=on (SME's 512-bit path), -cpu max,sme=off
(dispatch picks i8mm), -cpu cortex-a76 (dotprod, no i8mm) and -cpu cortex-a53 (the plain NEON
variant); then the same tests built by clang (the NDK's compiler).
"""
import os
import subprocess
from pathlib import Path

from toolchain import require

SCRIPT = Path(__file__).resolve().parent.parent / "kernels" / "tools" / "test_aarch64.sh"


def test_neon_kernels_under_qemu(tmp_path):
    require("aarch64-g++", "qemu-aarch64", "qemu-sme", "cmake", "clang")
    env = dict(os.environ, BUILD_DIR=str(tmp_path / "build"), TRIALS="100", JOBS="2")
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert out.count("best_int8=sme") == 4          # -cpu max (SVL 256) and max,sme512=on; gcc and clang
    assert "best_int8=neon_i8mm" in out             # -cpu max,sme=off
    assert "best_int8=neon_dotprod" in out          # cortex-a76
    assert "best_int8=neon " in out                 # cortex-a53: the plain NEON fallback
    assert "sme           int8:yes" in out and "neon_i8mm     int8:yes" in out and "neon_dotprod  int8:yes" in out
    assert out.count(" 0 failures") == 8            # 5 cpu settings with gcc, 3 with clang


def test_sme_instruction_words_match_their_mnemonics():
    """conv_int8_sme.cc writes SVE/SME instructions as .inst words (clang 14 has no SME mnemonics):
    each word must be what binutils assembles from the mnemonic in its comment."""
    require("aarch64-g++")
    import sys
    src = SCRIPT.parent.parent / "src" / "arm" / "conv_int8_sme.cc"
    proc = subprocess.run([sys.executable, str(SCRIPT.parent / "sme_inst.py"), "--check", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and " 0 wrong" in proc.stdout, proc.stdout + proc.stderr


def test_llvm_mca_reports_the_arm_main_loops(tmp_path):
    """kernels/tools/mca_arm.py: the marked NEON main loops (dotprod, the grouped conv's 3x3 block, i8mm,
    mlal, the post-op table, the dotprod tile's requantization)
    through llvm-mca on the core models, MACs per cycle against each core's peak for the loop's instruction
    (measured by llvm-mca too)."""
    require("aarch64-g++", "llvm-mca")
    import json
    import sys
    out = tmp_path / "mca.json"
    proc = subprocess.run([sys.executable, str(SCRIPT.parent / "mca_arm.py"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    by_loop = {}
    for r in rows:
        by_loop.setdefault(r["loop"], []).append(r["cpu"])
        assert 0 < r["fraction_of_peak"] <= 1.05, r
    dotprod_cores = ["cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1"]
    assert by_loop == {"neon_dotprod_6x16": dotprod_cores, "neon_dotprod_grouped_g4": dotprod_cores,
                       "neon_dotprod_grouped_g8": dotprod_cores,
                       "neon_i8mm_4x16": ["cortex-a710", "neoverse-v1"],
                       "neon_mlal_4x16": ["cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710"],
                       "neon_mlal_winograd_4x16": ["cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710"]}
    counts = {r["loop"]: (r["instruction"], r["count"]) for r in rows}
    assert counts == {"neon_dotprod_6x16": ("sdot", 96), "neon_dotprod_grouped_g4": ("sdot", 144),
                      "neon_dotprod_grouped_g8": ("sdot", 288), "neon_i8mm_4x16": ("smmla", 32),
                      "neon_mlal_4x16": ("smlal", 64), "neon_mlal_winograd_4x16": ("smlal", 64)}
    # Plain NEON's Winograd products (int16 U: no widening in the loop) run at least as close to the
    # smlal peak as the direct loop on every model (83 % against 78 % on the A53 model).
    mlal = {(r["loop"], r["cpu"]): r["fraction_of_peak"] for r in rows if "mlal" in r["loop"]}
    assert all(mlal["neon_mlal_winograd_4x16", cpu] >= mlal["neon_mlal_4x16", cpu] for cpu in by_loop["neon_mlal_4x16"]), mlal
    # The whole Winograd 3x3 conv on the models (products, input and output transforms, against the
    # direct loop's 9 taps): 2.18-2.35x on the A53 model, 2.11-2.43x elsewhere, when measured.
    model = json.loads(out.read_text())["winograd_model_rows"]
    assert {(r["cpu"], r["k"], r["n"]) for r in model} == {
        (cpu, k, n) for cpu in by_loop["neon_mlal_4x16"] for k, n in ((128, 32), (64, 64), (128, 128), (256, 256))}
    assert all(r["modeled_speedup"] >= 2.0 for r in model), model
    # The grouped 3x3 block (assembly) on the out-of-order cores: from intrinsics G = 4 measured
    # 55-57 % on the A76 model; now 83 % (A76) and 90-95 % elsewhere.
    grouped = {(r["loop"], r["cpu"]): r["fraction_of_peak"] for r in rows if "grouped" in r["loop"]}
    assert all(f >= 0.8 for (loop, cpu), f in grouped.items() if cpu != "cortex-a55"), grouped
    # The post-op table loop (48 bytes per iteration): four tbl per 16 bytes, so at least the
    # cycles of 12 tbl; below the intrinsics loop it replaced on every core (29-30, 22-23, 16, 9.3
    # cycles per 16 bytes on the A55, A76, A710 and Neoverse-V1 models).
    table = {r["cpu"]: r["cycles_per_16_bytes"] for r in json.loads(out.read_text())["table_rows"]}
    before = {"cortex-a55": 29, "cortex-a76": 22, "cortex-a710": 16, "neoverse-v1": 9.3}
    assert set(table) == set(before) and all(0 < table[c] < before[c] for c in before), table
    # The 3x3 depthwise kernels, cycles per output pixel and 16 channels: below what they took
    # before the epilogue clamped after the narrows and the accumulators started at the bias
    # (dotprod 136 / 57 / 34 / 18.6, plain NEON 146 / 60 / 41.7 / 25.4 on the A55 / A76 / A710 /
    # Neoverse-V1 models; the A53 runs only the plain kernel).
    depthwise = {(r["loop"], r["cpu"]): r["cycles_per_iteration"] for r in json.loads(out.read_text())["depthwise_rows"]}
    before = {"neon_dotprod_depthwise_3x3": {"cortex-a55": 136, "cortex-a76": 57, "cortex-a710": 34,
                                             "neoverse-v1": 18.6},
              "neon_depthwise_3x3": {"cortex-a53": 160, "cortex-a55": 146, "cortex-a76": 60, "cortex-a710": 41.7,
                                     "neoverse-v1": 25.4}}
    assert set(depthwise) == {(loop, cpu) for loop, cores in before.items() for cpu in cores}, depthwise
    assert all(0 < depthwise[loop, cpu] < limit for loop, cores in before.items() for cpu, limit in cores.items()), \
        depthwise
    # A 1x1 conv's whole dotprod tile (K / 16 loop iterations, then the fp32 requantization from the
    # registers): the requantization took 429 / 193 / 126 / 67 cycles on the A55 / A76 / A710 /
    # Neoverse-V1 models through the stack and StoreRow (at K = 128: 55 / 67 / 75 / 74 % of the sdot
    # peak); now 135 / 104 / 109 / 55 (70 / 79 / 78 / 78 %).
    tiles = {(r["cpu"], r["k"]): r for r in json.loads(out.read_text())["dotprod_1x1_tile_rows"]}
    before = {"cortex-a55": 429, "cortex-a76": 193, "cortex-a710": 126, "neoverse-v1": 67}
    assert set(tiles) == {(cpu, k) for cpu in dotprod_cores for k in (64, 128, 256, 512)}, sorted(tiles)
    assert all(0 < r["requant_cycles"] < 0.9 * before[cpu] for (cpu, k), r in tiles.items()), tiles
    # An image's last pixel (a 7x7 image's 49th) on its own 1-pixel tile, K split over two
    # accumulator sets: 0.21-0.52 of what it cost as a 6-pixel tile on the four models (62 / 20 / 10.1 /
    # 6.8 against 120 / 48 / 48 / 24 cycles per 16 input channels; the A76 model has one load unit).
    tail = {r["cpu"]: r["ratio"] for r in json.loads(out.read_text())["dotprod_tail_rows"]}
    assert set(tail) == set(dotprod_cores) and all(0 < f < 0.6 for f in tail.values()), tail
    assert all(tiles[cpu, 128]["fraction_of_peak"] >= 0.68 for cpu in dotprod_cores), tiles
