// Compiled for the baseline ISA (never with TICKINFER_NATIVE_ARCH): it must run on the CPU it is checking.

#include <string>

#include "model/native/isa.hpp"
#include "tickinfer/error.hpp"

namespace tickinfer::native {

void check_cpu() {
  const std::string isa = compiled_isa();
  struct Feature {
    const char* name;
    bool present;
  };
  __builtin_cpu_init();
  const Feature features[] = {
      {"avx512f", __builtin_cpu_supports("avx512f") != 0}, {"avx2", __builtin_cpu_supports("avx2") != 0},
      {"fma", __builtin_cpu_supports("fma") != 0},         {"avx", __builtin_cpu_supports("avx") != 0},
      {"sse4.2", __builtin_cpu_supports("sse4.2") != 0},
  };
  for (const Feature& f : features) {
    const std::string name = f.name;
    const bool compiled = (" " + isa + " ").find(" " + name + " ") != std::string::npos;
    if (compiled && !f.present) {
      throw Error(ErrorCode::kUnsupported, "native engine: compiled for " + isa + ", but this CPU has no " + name +
                                               " (rebuild with -DTICKINFER_NATIVE_ARCH=OFF for a portable build)");
    }
  }
}

}  // namespace tickinfer::native
