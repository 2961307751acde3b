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
find_package(tomlplusplus REQUIRED)  # feature configs
find_package(Boost 1.74 REQUIRED)    # Asio (header-only): the checkpoint watcher

# libzip reads LOBSTER sample zips (feed/zip_source.cpp); installed consumers link it by name. Found directly:
# Debian 12's libzip CMake package requires zipcmp & co., which libzip-dev does not install.
find_path(TICKINFER_LIBZIP_INCLUDE_DIR zip.h REQUIRED)
find_library(TICKINFER_LIBZIP_LIBRARY zip REQUIRED)
if(NOT TARGET tickinfer_libzip)
  add_library(tickinfer_libzip INTERFACE)
  target_include_directories(tickinfer_libzip SYSTEM INTERFACE ${TICKINFER_LIBZIP_INCLUDE_DIR})
  target_link_libraries(tickinfer_libzip INTERFACE ${TICKINFER_LIBZIP_LIBRARY})
endif()

if(NOT TICKINFER_TORCH_FREE_ONLY)
  # find_package(Torch) alone, so Debian's LibTorch, the official archive and a pip wheel all work.
  find_package(Torch REQUIRED)
  find_package(OpenSSL REQUIRED)     # SHA-256 of hot-swapped checkpoints
  find_package(ONNX 1.12 REQUIRED)    # the native engine's ONNX front end (libonnx-dev: ModelProto, checker)
  set(TICKINFER_HAS_CUDA OFF)
  if(TICKINFER_CUDA AND (TORCH_CUDA_LIBRARIES OR TARGET torch_cuda OR TARGET c10_cuda))
    set(TICKINFER_HAS_CUDA ON)
  endif()
  message(STATUS "tickinfer: LibTorch ${Torch_VERSION}, CUDA runner: ${TICKINFER_HAS_CUDA}")
endif()

# Under add_subdirectory, imported targets found here are visible only in tickinfer's directories, yet the
# consumer's targets link them through tickinfer's interface (torch, toml++): make them global.
if(NOT TICKINFER_MASTER_PROJECT)
  get_property(_tickinfer_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _tickinfer_imported)
    get_target_property(_global ${_target} IMPORTED_GLOBAL)
    if(NOT _global)
      set_target_properties(${_target} PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endforeach()
endif()
