#include "serve/daemon/net.hpp"

#include <cerrno>
#include <cstring>

#include "tickinfer/error.hpp"

namespace tickinfer::daemon {

sockaddr_in ipv4(const Endpoint& e, const std::string& what) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  if (inet_pton(AF_INET, e.host.c_str(), &a.sin_addr) != 1)
    throw Error(ErrorCode::kInvalidConfig, what + ": '" + e.host + "' is not an IPv4 address");
  return a;
}

void socket_error(const std::string& what) {
  throw Error(ErrorCode::kInvalidConfig, what + ": " + std::strerror(errno));
}

}  // namespace tickinfer::daemon
