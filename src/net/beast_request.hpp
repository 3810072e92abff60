// Private to mercato_net: the Beast-level steps of reading a request, shared by the server's
// connection loop and parseRequest() (request.hpp), so both apply the same limits and checks.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>

#include <boost/beast/http.hpp>

#include "net/request.hpp"

namespace mercato::net {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using RequestMessage = boost::beast::http::request<boost::beast::http::string_body>;

// Applies the body and header byte limits.
void configureParser(RequestParser& parser, const RequestLimits& limits);

// After the header is read: the 431 answer when it has too many fields, else nullopt.
std::optional<HttpResponse> checkHeaderLimits(const RequestParser& parser,
                                              const RequestLimits& limits);

// The answer to a failed read: 413 (body limit), 431 (header bytes), 400 (malformed). nullopt
// for transport errors (EOF, reset, timeout), where the connection is just closed.
std::optional<HttpResponse> responseForReadError(const boost::system::error_code& ec,
                                                 const RequestLimits& limits);

// Converts a complete message. Fails (400) for request targets that are not origin-form.
Result<HttpRequest> toHttpRequest(RequestMessage&& message, std::string remoteAddress);

}  // namespace mercato::net
