// Built into the packaging consumer: linking tickinfer::tickinfer must not put LibTorch's include directories
// or compile definitions on a consumer's compile line, only what the ABI needs (_GLIBCXX_USE_CXX11_ABI).
// <torch/all.h> lives only under LibTorch's csrc/api/include directory (Debian, the official archive, pip),
// unlike <torch/script.h>, which Debian installs straight under /usr/include.
#include <tickinfer/pipeline.hpp>
#include <tickinfer/registry.hpp>
#include <tickinfer/torchscript.hpp>

#if __has_include(<torch/all.h>)
#error "tickinfer::tickinfer put LibTorch's include directories (torch/csrc/api/include) on the consumer's path"
#endif
#if defined(USE_DISTRIBUTED) || defined(USE_C10D_GLOO) || defined(USE_RPC) || defined(USE_TENSORPIPE)
#error "tickinfer::tickinfer passed LibTorch's compile definitions on to the consumer"
#endif
// run_consumer.cmake checks compile_commands.json for -D_GLIBCXX_USE_CXX11_ABI=<LibTorch's value>.
