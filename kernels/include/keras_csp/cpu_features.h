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
