#pragma once
// The one place LibTorch exceptions become tickinfer messages. Internal: pulls in torch headers.

#include <ATen/Tensor.h>
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>

namespace tickinfer::internal {

/// c10::Error::what() appends a C++ backtrace; callers want the message without it.
inline std::string torch_error_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

/// Whether `e` came from LibTorch (c10::Error and its subclasses).
inline bool is_torch_error(const std::exception& e) { return dynamic_cast<const c10::Error*>(&e) != nullptr; }

/// The first line of torch_error_text(): for one-line logs and refusal reasons.
inline std::string torch_error_line(const std::exception& e) {
  std::string text = torch_error_text(e);
  text.resize(std::min(text.size(), text.find('\n')));
  return text;
}

/// "[2, 3]": a tensor's shape for messages.
inline std::string shape_of(const at::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}

inline std::int64_t to_i64(std::size_t value) { return static_cast<std::int64_t>(value); }

}  // namespace tickinfer::internal
