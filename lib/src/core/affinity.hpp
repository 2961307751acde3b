#pragma once
// Pins the calling thread to one core. Internal: the pipeline's workers, the replay's feed thread, the daemon's
// threads.

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tickinfer/error.hpp"

namespace tickinfer::internal {

/// core < 0: not pinned. Refused (kInvalidConfig): "<context>: cannot pin <what> to core N: <reason>".
inline void pin_current_thread(int core, const std::string& context, const std::string& what) {
  if (core < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int rc =
      core < CPU_SETSIZE ? (CPU_SET(core, &set), pthread_setaffinity_np(pthread_self(), sizeof set, &set)) : EINVAL;
  if (rc != 0)
    throw Error(ErrorCode::kInvalidConfig,
                context + ": cannot pin " + what + " to core " + std::to_string(core) + ": " + std::strerror(rc));
}

}  // namespace tickinfer::internal
