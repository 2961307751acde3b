#include "serve/http_message.hpp"

#include <exception>
#include <iterator>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

namespace tickinfer::internal {

namespace http = boost::beast::http;

void limit_parser(RequestParser& parser, std::size_t max_header_bytes, std::size_t max_body_bytes) {
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
}

std::optional<HttpResponse> parse_error_response(const boost::beast::error_code& error) {
  if (error == http::error::header_limit) {
    return error_response(431, "request header fields too large");
  }
  if (error == http::error::body_limit) return error_response(413, "request body too large");
  // end_of_stream (closed between requests) and partial_message (closed mid-request): nobody to answer.
  if (error == http::error::end_of_stream || error == http::error::partial_message) return std::nullopt;
  if (error.category() == http::make_error_code(http::error::bad_target).category()) {
    return error_response(400, std::string("malformed request: ").append(error.message()));
  }
  return std::nullopt;  // a socket error or a timeout
}

Router::Routed route_request(Router& router, const BeastRequest& request) {
  HttpRequest view;
  view.method = std::string_view(request.method_string().data(), request.method_string().size());
  view.target = std::string_view(request.target().data(), request.target().size());
  view.body = request.body();
  std::string_view authorization;
  const auto range = request.equal_range(http::field::authorization);
  if (range.first != range.second) {
    authorization = std::string_view(range.first->value().data(), range.first->value().size());
    view.authorization = &authorization;
    view.authorization_repeated = std::next(range.first) != range.second;
  }
  try {
    return router.route(view);
  } catch (const std::exception& e) {
    return {error_response(500, std::string("internal error: ").append(e.what())), {}};
  } catch (...) {
    return {error_response(500, "internal error"), {}};
  }
}

BeastResponse make_response(HttpResponse response, unsigned http_version, bool keep_alive) {
  BeastResponse out{static_cast<http::status>(response.status), http_version};
  out.set(http::field::server, "tickinfer");
  if (!response.content_type.empty()) out.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) out.set(name, value);
  out.body() = std::move(response.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

std::optional<HttpResponse> answer_bytes(Router& router, std::string_view bytes, std::size_t max_header_bytes,
                                         std::size_t max_body_bytes) {
  RequestParser parser;
  limit_parser(parser, max_header_bytes, max_body_bytes);
  parser.eager(true);
  boost::beast::error_code error;
  while (!bytes.empty() && !parser.is_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), error);
    if (error == http::error::need_more) {
      if (used == 0) return std::nullopt;  // incomplete
      error = {};
    }
    if (error) return parse_error_response(error);
    bytes.remove_prefix(used);
  }
  if (!parser.is_done()) return std::nullopt;
  Router::Routed routed = route_request(router, parser.get());
  if (routed.infer) return error_response(501, "inference runs in the server only (decoded and checked here)");
  return routed.blocking ? routed.blocking() : std::move(routed.response);
}

}  // namespace tickinfer::internal
