"""Cap the x86 instruction sets XNNPACK (inside ai-edge-litert's Interpreter) picks kernels for.

XNNPACK chooses its microkernels from one bit mask (``xnn_hardware_config.arch_flags``), filled once
from cpuid, and each operator family (qs8 GEMM, depthwise, ...) reads it the first time such an
operator is created. Clearing bits before that makes it run, on this core, the kernels a CPU
without those extensions gets: ``avxvnni`` on an AVX-512 machine is what an Intel client CPU (Alder
Lake and later: AVX-VNNI, no AVX-512) runs, ``avx2`` what a Zen 3 or a Skylake client runs. So
``bench-kernels --variant avxvnni --xnnpack-isa avxvnni`` compares our AVX-VNNI kernels against
XNNPACK's on the same core, which XNNPACK's own dispatch never shows on an AVX-512 CPU.

The mask is a static inside ``libpywrap_litert_common.so``; the wheel keeps that library's symbol
table, which is how it is found. The bit numbers are XNNPACK's ``enum xnn_arch_flags`` as built into
the ai-edge-litert 2.3 wheel (checked by disassembly: refusing AMX tile state clears bit 20, its
``xnn_arch_x86_avx512amx``), and the mask read here is checked against this CPU's features before
anything is written: another layout raises instead of guessing.

Benchmark use only, and only before anything in the process has created an XNNPACK int8 operator
(operators created before keep the kernels they got). No level has AMX, so it denies AMX tile state to
the process first (``keras_csp.amx.deny_amx``). ``bench-kernels`` applies it while parsing its options,
as ``--deny-amx``. Linux x86-64 only.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

LIBRARY = "libpywrap_litert_common.so"

# enum xnn_arch_flags (x86) in the wheel's XNNPACK
_SSE_TO_AVX2 = 0xFF          # sse, sse2, ssse3, sse4_1, avx, f16c, fma3, avx2: bits 0-7
_AVX512F = 9
_AVXVNNI = 14
_AVX512VNNI = 18
_AVX512AMX = 20

# What each cap keeps: the bits a CPU of that class has, the rest of this CPU's bits cleared. Each
# level is also the keras_csp._kernels.cpu_features name of the extension it needs on this CPU.
LEVELS = {
    "avx2": _SSE_TO_AVX2,                                  # Zen 3, Haswell .. Comet Lake clients
    "avxvnni": _SSE_TO_AVX2 | 1 << _AVXVNNI,               # Alder Lake .. Arrow Lake (no AVX-512)
    "avx512vnni": (1 << _AVX512AMX) - 1,                   # Ice Lake .. Zen 5 class: everything but AMX
}

_capped: dict | None = None


def xnnpack_isa_cap() -> dict | None:
    """What cap_xnnpack_isa() did in this process (level and masks), or None: for the JSON reports."""
    return dict(_capped) if _capped else None


def _library_path() -> str:
    import ai_edge_litert
    return os.path.join(os.path.dirname(ai_edge_litert.__file__), LIBRARY)


def _symbols(path: str, names: set[str]) -> dict[str, int]:
    """Values (load-relative addresses) of the named symbols in the ELF64 file's .symtab."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise RuntimeError(f"{path} is not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, list[int]] = {}
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab_off = sections[sec[6]][4]
        for off in range(sec[4], sec[4] + sec[5], 24):
            name, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off)
            start = strtab_off + name
            n = data[start:data.index(b"\0", start)].decode("ascii", "replace")
            if n in names:
                found.setdefault(n, []).append(value)
    missing = sorted(names - found.keys())
    if missing:
        raise RuntimeError(f"{path} has no symbol table entries for {', '.join(missing)}: this ai-edge-litert "
                           "build cannot have its XNNPACK ISA capped")
    doubled = sorted(n for n, v in found.items() if len(set(v)) > 1)
    if doubled:
        raise RuntimeError(f"{path} defines {', '.join(doubled)} more than once: cannot tell which is XNNPACK's")
    return {n: v[0] for n, v in found.items()}


def _load_base(path: str) -> int:
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and int(parts[2], 16) == 0 and os.path.realpath(parts[5]) == real:
                return int(parts[0].split("-")[0], 16)
    raise RuntimeError(f"{path} is not loaded in this process")


def cap_xnnpack_isa(level: str) -> dict:
    """Make XNNPACK in this process pick kernels as on a CPU with at most `level` ("avx2", "avxvnni",
    "avx512vnni"; see the module docstring). Returns {"level", "arch_flags_before", "arch_flags"}."""
    global _capped
    if level not in LEVELS:
        raise ValueError(f"unknown XNNPACK ISA level {level!r}; choose one of {', '.join(LEVELS)}")
    if _capped:  # the mask no longer says what the CPU has: the check below cannot run again
        if _capped["level"] == level:
            return dict(_capped)
        raise RuntimeError(f"XNNPACK is already held to {_capped['level']} in this process")
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"capping XNNPACK's ISA works on Linux x86-64 only (this is {sys.platform} "
                           f"{platform.machine()})")
    # None of the levels has AMX, and both XNNPACK's hardware setup (below) and our feature probe ask Linux
    # for the tile state: refuse it first, as --deny-amx (both sides then run without AMX).
    from ..amx import amx_denied, deny_amx
    if not amx_denied():
        deny_amx()
    from .. import _kernels
    features = _kernels.cpu_features()
    if not features.get(level):
        raise RuntimeError(f"this CPU has no {level}: XNNPACK cannot run its {level} kernels here")
    import ai_edge_litert.interpreter  # noqa: F401 - loads the library
    path = _library_path()
    names = {"xnn_init_hardware_config", "hardware_config", "qs8_qc8w_gemm_guard", "qs8_qc8w_dwconv_guard",
             "xnn_init_generation"}
    sym = _symbols(path, names)
    base = _load_base(path)
    generation = ctypes.c_uint32.from_address(base + sym["xnn_init_generation"]).value
    for guard in ("qs8_qc8w_gemm_guard", "qs8_qc8w_dwconv_guard"):
        if ctypes.c_uint32.from_address(base + sym[guard]).value == generation:
            raise RuntimeError("XNNPACK already created int8 operators in this process (their kernels are chosen): "
                               "cap its ISA first, before any LiteRT interpreter runs")
    init = ctypes.CFUNCTYPE(ctypes.c_void_p)(base + sym["xnn_init_hardware_config"])
    config = init()
    if config != base + sym["hardware_config"]:
        raise RuntimeError("xnn_init_hardware_config() did not return the hardware_config it fills")
    flags = ctypes.c_uint64.from_address(config + 8)  # arch_flags: 8 bytes into the struct in this build
    before = flags.value
    # The layout check: the mask must say what this CPU has, bit by bit where both know the feature.
    expected = {7: features.get("avx2"), _AVX512F: features.get("avx512f"), _AVXVNNI: features.get("avxvnni"),
                _AVX512VNNI: features.get("avx512vnni")}
    wrong = [bit for bit, has in expected.items() if bool(before >> bit & 1) != bool(has)]
    if wrong or before & _SSE_TO_AVX2 != _SSE_TO_AVX2:
        raise RuntimeError(f"XNNPACK's arch flags {before:#x} do not match this CPU's features (bits {wrong}): "
                           "unknown xnn_hardware_config layout, not changed")
    flags.value = before & LEVELS[level]
    _capped = {"level": level, "arch_flags_before": f"{before:#x}", "arch_flags": f"{flags.value:#x}",
               "library": LIBRARY}
    return dict(_capped)
