#pragma once
// The instruction set the native kernels were compiled for, checked against the CPU before a plan is made.

#include <string>

namespace tickinfer::native {

/// The ISA extensions plan.cpp was compiled with, e.g. "avx512f avx2 fma" or "baseline". Defined in plan.cpp.
const char* compiled_isa() noexcept;

/// Throws Error(kUnsupported) when this CPU lacks an extension the kernels were compiled for (a build made
/// with TICKINFER_NATIVE_ARCH on one machine and run on an older one). Defined in isa.cpp, which is compiled
/// for the baseline ISA so the check itself runs anywhere.
void check_cpu();

}  // namespace tickinfer::native
