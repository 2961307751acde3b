#pragma once
// The tools' SIGINT/SIGTERM handling: the first signal sets g_stop (the tool finishes what it started and reports),
// a second one ends the process at once. For tickinfer-replay and tickinfer-feed; tickinfer-serve takes its signals
// with sigwait() instead.

#include <signal.h>

#include <atomic>
#include <cstdlib>

namespace tickinfer::apps {

inline std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler may only touch lock-free atomics");

extern "C" inline void on_stop_signal(int signal) {
  if (g_stop.exchange(true)) std::_Exit(128 + signal);
}

inline void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace tickinfer::apps
