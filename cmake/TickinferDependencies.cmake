find_package(Threads REQUIRED)

# moodycamel ships header-only; Debian installs it flat under include/concurrentqueue,
# upstream's install under include/concurrentqueue/moodycamel.
find_path(TICKINFER_CONCURRENTQUEUE_DIR NAMES blockingconcurrentqueue.h
          PATH_SUFFIXES concurrentqueue concurrentqueue/moodycamel REQUIRED)
if(NOT TARGET tickinfer_concurrentqueue)
  add_library(tickinfer_concurrentqueue INTERFACE)
  target_include_directories(tickinfer_concurrentqueue SYSTEM INTERFACE ${TICKINFER_CONCURRENTQUEUE_DIR})
endif()

find_package(nlohmann_json 3.2 REQUIRED)

if(NOT TICKINFER_TORCH_FREE_ONLY)
  # find_package(Torch) alone, so Debian's LibTorch, the official archive and a pip wheel all work.
  find_package(Torch REQUIRED)
  find_package(OpenSSL REQUIRED)     # SHA-256 of hot-swapped checkpoints
  find_package(Boost 1.74 REQUIRED)  # Asio (header-only) for the checkpoint watcher
  set(TICKINFER_HAS_CUDA OFF)
  if(TICKINFER_CUDA AND (TORCH_CUDA_LIBRARIES OR TARGET torch_cuda OR TARGET c10_cuda))
    set(TICKINFER_HAS_CUDA ON)
  endif()
  message(STATUS "tickinfer: LibTorch ${Torch_VERSION}, CUDA runner: ${TICKINFER_HAS_CUDA}")
endif()
