// Run-time CPU feature detection used to pick a kernel variant.
#pragma once

#include <string>

namespace keras_csp {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vnni = false;
  bool avx512vbmi = false;  // vpermt2b: the post ops' 256-entry table lookups
  bool avxvnni = false;  // VEX-encoded 256-bit VNNI (CPUID.(7,1):EAX bit 4)
  // AMX-TILE + AMX-INT8, the OS saving tile state (XCR0 bits 17, 18) and, on Linux, this process
  // granted it (arch_prctl ARCH_REQ_XCOMP_PERM, asked once at detection).
  bool amx_int8 = false;
  // Why a CPU with AMX-INT8 does not get the amx variant (empty when it does or has no AMX).
  const char* amx_note = "";
  bool neon = false;
  bool neon_dotprod = false;
  bool neon_i8mm = false;
  bool sme = false;  // HWCAP2_SME and a streaming vector length the SME kernel supports (256, >= 512 bits)
};

// Detected once, cached.
const CpuFeatures& cpu_features();

// Human-readable name of the architecture this library was compiled for.
std::string compiled_arch();

}  // namespace keras_csp
