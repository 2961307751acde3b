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

# clang, Torch-free builds: tickinfer_torch_syntax_check (lib/CMakeLists.txt) parses the Torch sources for
# -Wthread-safety, which needs LibTorch's headers, never its libraries.
if(TICKINFER_TORCH_FREE_ONLY AND TICKINFER_TORCH_SYNTAX_CHECK)
  find_package(Torch REQUIRED)
  find_package(OpenSSL REQUIRED)
  find_package(ONNX 1.12 REQUIRED)
endif()
if(NOT TICKINFER_TORCH_FREE_ONLY)
  # find_package(Torch) alone, so Debian's LibTorch, the official archive and a pip wheel all work.
  find_package(Torch REQUIRED)
  # LibTorch before 2.1 uses std::vector<c10::IValue> while IValue is incomplete (ATen/core/List.h); with
  # libstdc++ 12's constexpr std::vector, clang rejects that in C++20 (GCC accepts it): pytorch/pytorch#93978.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND Torch_VERSION VERSION_LESS 2.1)
    message(FATAL_ERROR "clang cannot compile LibTorch ${Torch_VERSION}'s headers in C++20 (pytorch/pytorch#93978, "
                        "fixed in 2.1): build with GCC, or the Torch-free core with -DTICKINFER_TORCH_FREE_ONLY=ON")
  endif()
  find_package(OpenSSL REQUIRED)     # SHA-256 of hot-swapped checkpoints
  find_package(ONNX 1.12 REQUIRED)    # the native engine's ONNX front end (libonnx-dev: ModelProto, checker)
  set(TICKINFER_HAS_CUDA OFF)
  if(TICKINFER_CUDA AND (TORCH_CUDA_LIBRARIES OR TARGET torch_cuda OR TARGET c10_cuda))
    set(TICKINFER_HAS_CUDA ON)
  endif()
  # LibTorch's libstdc++ ABI (TORCH_CXX_FLAGS: "-D_GLIBCXX_USE_CXX11_ABI=0|1" on Linux): the one Torch flag
  # tickinfer passes on to its consumers (lib/CMakeLists.txt).
  set(TICKINFER_TORCH_CXX11_ABI "")
  if(TORCH_CXX_FLAGS MATCHES "-D_GLIBCXX_USE_CXX11_ABI=([01])")
    set(TICKINFER_TORCH_CXX11_ABI ${CMAKE_MATCH_1})
  endif()
  message(STATUS "tickinfer: LibTorch ${Torch_VERSION}, CUDA runner: ${TICKINFER_HAS_CUDA}, "
                 "_GLIBCXX_USE_CXX11_ABI=${TICKINFER_TORCH_CXX11_ABI}")
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
