#pragma once
// Sockets for the daemon: IPv4 addresses from config endpoints, and the error for a failed socket call. Internal.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "serve/daemon/config.hpp"

namespace tickinfer::daemon {

/// Refused (kInvalidConfig): "<what>: '<host>' is not an IPv4 address".
sockaddr_in ipv4(const Endpoint& e, const std::string& what);

/// Throws kInvalidConfig "<what>: <strerror(errno)>".
[[noreturn]] void socket_error(const std::string& what);

}  // namespace tickinfer::daemon
