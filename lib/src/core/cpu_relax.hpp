#pragma once
// The spin-wait hint every busy loop in tickinfer uses.

namespace tickinfer::internal {

/// Tells the core we are spinning: frees pipeline resources for the sibling hyper-thread and avoids the
/// memory-order mis-speculation penalty when the awaited store lands.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace tickinfer::internal
