#include "keras_csp/cpu_features.h"

#include "conv_internal.h"  // internal::SmeVectorLengthSupported (aarch64)

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace keras_csp {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// Linux keeps AMX tile data (XTILEDATA, 8 KB of state) off until a process asks for it; the
// first tile instruction without the grant raises SIGILL. Returns whether tiles may be used.
bool RequestAmxState(const char** note) {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtileData = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0) return true;
  *note = "AMX-INT8 present, but the kernel refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM): "
          "AVX-512 VNNI kernels run instead";
  return false;
#else
  *note = "AMX-INT8 present, but tile state is only requested on Linux: AVX-512 VNNI kernels run instead";
  return false;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(_M_X64)
  unsigned eax, ebx, ecx, edx;
  bool os_avx = false, os_avx512 = false, os_amx = false;
  [[maybe_unused]] bool avx512vl = false;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    const bool osxsave = ecx & (1u << 27);
    f.fma = ecx & (1u << 12);
    if (osxsave) {
      // XGETBV: the OS must save YMM (bits 1,2) and ZMM/opmask state (bits 5,6,7).
      unsigned lo, hi;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      os_avx = (lo & 0x6) == 0x6;
      os_avx512 = (lo & 0xE6) == 0xE6;
      os_amx = (lo & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
    }
  }
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = os_avx && (ebx & (1u << 5));
    f.avx512f = os_avx512 && (ebx & (1u << 16));
    f.avx512bw = os_avx512 && (ebx & (1u << 30));
    f.avx512vnni = os_avx512 && (ecx & (1u << 11));
    f.avx512vbmi = os_avx512 && (ecx & (1u << 1));
    // AMX-TILE (EDX bit 24) and AMX-INT8 (bit 25); the kernels' epilogue is AVX-512.
    const bool amx = (edx & (1u << 24)) && (edx & (1u << 25));
    if (amx && !os_amx) f.amx_note = "AMX-INT8 present, but the OS does not enable tile state (XCR0)";
    f.amx_int8 = amx && os_amx && f.avx512bw && f.avx512vnni && RequestAmxState(&f.amx_note);
#if defined(KCSP_AVXVNNI_AS_EVEX)  // test build: the avxvnni variant runs on AVX-512 VNNI + VL
    avx512vl = os_avx512 && (ebx & (1u << 31));
#endif
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avxvnni = os_avx && (eax & (1u << 4));
#if defined(KCSP_AVXVNNI_AS_EVEX)
  f.avxvnni = f.avxvnni || (f.avx512vnni && avx512vl);
#endif
  f.fma = f.fma && os_avx;
#elif defined(__aarch64__)
  f.neon = true;
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  f.neon_dotprod = getauxval(AT_HWCAP) & HWCAP_ASIMDDP;
#endif
#if defined(__linux__) && defined(HWCAP2_I8MM)
  f.neon_i8mm = getauxval(AT_HWCAP2) & HWCAP2_I8MM;
#endif
#if defined(__linux__)
  constexpr unsigned long kHwcap2Sme = 1UL << 23;  // HWCAP2_SME (older headers lack it)
  // rdsvl is only executed once the kernel says SME exists (it is UNDEFINED otherwise).
  f.sme = (getauxval(AT_HWCAP2) & kHwcap2Sme) && internal::SmeVectorLengthSupported();
#endif
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string compiled_arch() {
#if defined(__x86_64__) || defined(_M_X64)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "generic";
#endif
}

}  // namespace keras_csp
