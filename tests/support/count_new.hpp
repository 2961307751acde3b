#pragma once
// Counts operator new calls while a CountNew is alive, on every thread. Include in exactly one source file of a
// test binary: it replaces the global operator new/delete. (pipeline_alloc_test.cpp also interposes malloc.)

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // GCC 12 pairs the inlined free() with new wrongly
#endif

namespace tickinfer::testing {

inline std::atomic<bool> g_count_new{false};
inline std::atomic<std::size_t> g_new_calls{0};

/// While alive, operator new calls are counted; calls() reads the count so far.
class CountNew {
 public:
  CountNew() {
    g_new_calls.store(0);
    g_count_new.store(true);
  }
  ~CountNew() { g_count_new.store(false); }
  CountNew(const CountNew&) = delete;
  CountNew& operator=(const CountNew&) = delete;
  std::size_t calls() const { return g_new_calls.load(); }
};

}  // namespace tickinfer::testing

void* operator new(std::size_t size) {
  // Relaxed: a statistic; the test reads it after joining or waiting on what it counted.
  if (tickinfer::testing::g_count_new.load(std::memory_order_relaxed))
    tickinfer::testing::g_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
