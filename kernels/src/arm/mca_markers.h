// llvm-mca region markers around a main loop (kernels/tools/mca_arm.py compiles the file with
// -DKCSP_MCA_MARKERS; normal builds have no markers).
#pragma once

#if defined(KCSP_MCA_MARKERS)
// Regions hold one epilogue: the fp32 requantization (the runtime's default numerics, XNNPACK's).
#define KCSP_MCA_FP32_ONLY 1
#define KCSP_MCA_BEGIN(name) asm volatile("// LLVM-MCA-BEGIN " name)
#define KCSP_MCA_END(name) asm volatile("// LLVM-MCA-END " name)
#define KCSP_MCA_ASM_BEGIN(name) "// LLVM-MCA-BEGIN " name "\n"  // inside an asm string
#define KCSP_MCA_ASM_END(name) "// LLVM-MCA-END " name "\n"
#else
#define KCSP_MCA_FP32_ONLY 0
#define KCSP_MCA_BEGIN(name) ((void)0)
#define KCSP_MCA_END(name) ((void)0)
#define KCSP_MCA_ASM_BEGIN(name) ""
#define KCSP_MCA_ASM_END(name) ""
#endif
