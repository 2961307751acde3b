#pragma once
// Between Beast's HTTP messages and the router's: the bounded request parser, parse errors as statuses, and the
// response the server writes. Shared by the server's sessions and the fuzz target. Internal.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "serve/router.hpp"

namespace tickinfer::internal {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastResponse = boost::beast::http::response<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// A parser bounded by the server's limits (header: request line and fields).
void limit_parser(RequestParser& parser, std::size_t max_header_bytes, std::size_t max_body_bytes);

/// The answer to a request the parser refused, or nullopt when there is nothing to answer (the peer closed or
/// reset the connection, or a timeout, which closes it): 431 over the header limit, 413 over the body limit, 400
/// for any other malformed request.
std::optional<HttpResponse> parse_error_response(const boost::beast::error_code& error);

/// Routes a parsed request. Every answer comes back, including model control's `blocking` job (not run here).
/// An exception from the router becomes a 500 answer.
Router::Routed route_request(Router& router, const BeastRequest& request);

/// The response to write: status, Server, Content-Type and Content-Length, extra headers, and Connection: close
/// unless `keep_alive`.
BeastResponse make_response(HttpResponse response, unsigned http_version, bool keep_alive);

/// What the fuzz target and tests drive: parses `bytes` as one request within the limits and answers it as the
/// server would (a `blocking` job runs inline). nullopt when `bytes` is an incomplete request.
std::optional<HttpResponse> answer_bytes(Router& router, std::string_view bytes, std::size_t max_header_bytes,
                                         std::size_t max_body_bytes);

}  // namespace tickinfer::internal
